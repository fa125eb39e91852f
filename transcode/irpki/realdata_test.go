package irpki_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// realSnapshotsAndDeltas are the third-party snapshots and deltas the
// transcoder must carry losslessly (rrdpxml's own tests cover every file,
// hostile ones included).
var realSnapshotsAndDeltas = []string{
	"krill-sync/test-resources/validation/good/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/snapshot.xml",
	"krill-sync/test-resources/validation/good/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/delta.xml",
	"krill-sync/test-resources/rrdp-rev2658/e9be21e7-c537-4564-b742-64700978c6b4/2658/rnd-sn/snapshot.xml",
	"krill-sync/test-resources/rrdp-rev2658/e9be21e7-c537-4564-b742-64700978c6b4/2656/delta.xml",
	"krill-sync/test-resources/rrdp-rev2658/e9be21e7-c537-4564-b742-64700978c6b4/2658/rnd-d/delta.xml",
	"krill-sync/test-resources/rrdp-rev2-session-reset/bf64ea72-ebb8-462f-99fb-8cd06f418565/2/snapshot.xml",
	"krill-sync/test-resources/rrdp-empty-snapshot/bf64ea72-ebb8-462f-99fb-8cd06f418565/1/snapshot.xml",
	"rpki-rs/test-data/rrdp/ripe-snapshot.xml",
	"rpki-rs/test-data/rrdp/ripe-delta.xml",
	"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/snapshot.xml",
	"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/delta.xml",
}

func gzipSize(t testing.TB, b []byte) int {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

// TestRealData round-trips every real snapshot and delta (objects kept
// byte for byte, the RIPE snapshot's BER indefinite-length CMS included)
// and logs the sizes that the README reports (go test -v -run RealData).
func TestRealData(t *testing.T) {
	dir := realdata.Dir(t)
	for _, rel := range realSnapshotsAndDeltas {
		t.Run(filepath.Base(filepath.Dir(rel))+"/"+filepath.Base(rel), func(t *testing.T) {
			x, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			res := checkRoundTrip(t, x)
			bin, _ := toBin(t, x)
			xz, bz := gzipSize(t, x), gzipSize(t, bin)
			t.Logf("%s: %d objects in %d groups; xml %d, bin %d (%.1f%%), xml.gz %d, bin.gz %d (%.1f%%)",
				rel, res.Objects, res.Groups, len(x), len(bin), 100*float64(len(bin))/float64(len(x)),
				xz, bz, 100*float64(bz)/float64(xz))
		})
	}
}
