package compact

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// TestKrill builds the compact form of the real Krill repository at its
// time, with CA certificates and lean, and checks that the client's VRPs
// equal rpki-client 8.2's, CSV byte for byte, JSON but for the machine
// lines.
func TestKrill(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { testKrill(t, v.lean) })
	}
}

func testKrill(t *testing.T, lean bool) {
	dir := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	src := rpki.MapSource{}
	applyRRDP(t, src, filepath.Join(dir, "rrdp", "cd0c701d-ff09-4e95-8f2a-fa24de875fb5", "3", "0ab6e84be3ec9561", "snapshot.xml"))
	b, err := os.ReadFile(filepath.Join(dir, "ta.tal"))
	if err != nil {
		t.Fatal(err)
	}
	tal, err := rpki.ParseTAL(b)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(dir, "ta.cer"))
	if err != nil {
		t.Fatal(err)
	}
	tas := []rpki.TrustAnchor{{Name: "ta", TAL: tal, Cert: cert, CertFile: "ta.cer"}}
	now := time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	s := testSigner(t, 1)
	_, groups := validateAndBuild(t, src, tas, now, s, lean)
	if len(groups) != 12 {
		t.Errorf("got %d groups, want 12", len(groups))
	}
	for _, g := range groups {
		if has, want := g.Certificate != nil, !lean || g.Parent == ""; has != want || (g.Manifest.Ca != nil) == has {
			t.Errorf("group %s: certificate %v, CA record %v; want a certificate %v", g.Uri, has, g.Manifest.Ca != nil, want)
		}
	}
	_, fs, err := New("krill", groups, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub := files{}
	pub.add(fs)
	_, res, err := Sync(nil, pub[NotificationName], pub.fetch, trust(t, s), now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(realdata.Path(t, "krill-sync", "oracle"), "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if got := csv(t, res); !bytes.Equal(got, want) {
		t.Errorf("CSV differs from rpki-client's:\ngot:\n%s\nwant:\n%s", got, want)
	}
	// The JSON too, but for the lines that describe the machine and the
	// run: the counts the client derives from the compact state are
	// rpki-client's.
	var js bytes.Buffer
	if err := res.WriteJSON(&js, rpki.JSONMeta{BuildMachine: "vm", BuildTime: now.Add(time.Second), TALFiles: []string{"/tmp/rrdp-origin/ta.tal"}}); err != nil {
		t.Fatal(err)
	}
	wantJSON, err := os.ReadFile(filepath.Join(realdata.Path(t, "krill-sync", "oracle"), "rpki-client-8.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	machine := regexp.MustCompile(`(?m)^\t\t"(buildmachine|elapsedtime|usertime|systemtime|cachedir_del_dirs)": .*\n|^\t\t\t"/.*\.tal"\n`)
	if got, w := machine.ReplaceAll(js.Bytes(), nil), machine.ReplaceAll(wantJSON, nil); !bytes.Equal(got, w) {
		t.Errorf("JSON differs from rpki-client's (machine lines masked):\ngot:\n%s\nwant:\n%s", got, w)
	}
	// Deterministic: the same state and key give the same bytes.
	_, groups2 := validateAndBuild(t, src, tas, now, s, lean)
	_, fs2, err := New("krill", groups2, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range fs {
		if fs[i].Name != fs2[i].Name || !bytes.Equal(fs[i].Data, fs2[i].Data) {
			t.Errorf("file %s differs between two builds", fs[i].Name)
		}
	}
	t.Logf("compact snapshot %d bytes, notification %d bytes", len(fs[0].Data), len(pub[NotificationName]))
}
