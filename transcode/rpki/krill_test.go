package rpki

import (
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// readSnapshot returns the objects of an RRDP snapshot by URI.
func readSnapshot(t testing.TB, file string) (map[string][]byte, []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := rrdpxml.NewDecoder(f, rrdpxml.Limits{})
	defer d.Close()
	objects := map[string][]byte{}
	var order []string
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if e.Withdraw {
			continue
		}
		objects[e.URI] = slices.Clone(e.Content)
		order = append(order, e.URI)
	}
	return objects, order
}

// TestKrillRepository validates the complete Krill repository of the
// krill-sync test set (TA -> CA -> 10 CAs) and compares its VRPs with those
// of rpki-client 8.2.
func TestKrillRepository(t *testing.T) {
	dir := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	objects, order := readSnapshot(t, filepath.Join(dir, "rrdp", "cd0c701d-ff09-4e95-8f2a-fa24de875fb5", "3", "0ab6e84be3ec9561", "snapshot.xml"))
	if len(order) != 135 {
		t.Fatalf("snapshot holds %d objects, want 135", len(order))
	}
	taDER, err := os.ReadFile(filepath.Join(dir, "ta.cer"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	res := walkRepo(t, taDER, objects, now)
	if len(res.Visited) != len(objects) {
		for _, u := range order {
			if !res.Visited[u] {
				t.Errorf("object %s not reached from the TA", u)
			}
		}
	}

	f, err := os.Open(realdata.Path(t, "krill-sync", "oracle", "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range rows[1:] {
		want = append(want, r[0]+","+r[1]+","+r[2])
	}
	slices.Sort(want)
	if len(want) != 100 {
		t.Fatalf("oracle holds %d VRPs, want 100", len(want))
	}
	if !slices.Equal(res.VRPs, want) {
		t.Errorf("got %d VRPs, want the oracle's %d:\ngot  %v\nwant %v", len(res.VRPs), len(want), res.VRPs, want)
	}

	t.Run("expired", func(t *testing.T) {
		ta, err := ParseCert(taDER)
		if err != nil {
			t.Fatal(err)
		}
		late := time.Date(2024, 2, 15, 0, 0, 0, 0, time.UTC)
		mft, err := ParseSignedObject(objects[ta.Manifest])
		if err != nil {
			t.Fatal(err)
		}
		crl, err := ParseCRL(objects[mft.EE.CRL])
		if err != nil {
			t.Fatal(err)
		}
		if err := mft.Verify(ta, crl, late); err == nil {
			t.Errorf("TA manifest verified at %s, after its nextUpdate", late)
		}
	})
}
