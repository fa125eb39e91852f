package rpki

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// krillTA returns the trust anchor of the Krill data set: its TAL and the
// TA certificate beside it.
func krillTA(t testing.TB, dir string) TrustAnchor {
	t.Helper()
	tal, err := ParseTAL(readFile(t, filepath.Join(dir, "ta.tal")))
	if err != nil {
		t.Fatal(err)
	}
	return TrustAnchor{Name: "ta", TAL: tal, Cert: readFile(t, filepath.Join(dir, "ta.cer")), CertFile: "ta.cer"}
}

// machineMeta matches the lines of rpki-client's JSON metadata that
// describe the machine and the run rather than the repository.
var machineMeta = regexp.MustCompile(`(?m)^\t\t"(buildmachine|elapsedtime|usertime|systemtime|cachedir_del_dirs)": .*\n|^\t\t\t"/.*\.tal"\n`)

// TestValidateKrill validates the real Krill repository at its time and
// compares the output with rpki-client 8.2's, byte for byte: the CSV
// whole, the JSON but for the lines that describe the machine.
func TestValidateKrill(t *testing.T) {
	dir := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	objects, _ := readSnapshot(t, filepath.Join(dir, "rrdp", "cd0c701d-ff09-4e95-8f2a-fa24de875fb5", "3", "0ab6e84be3ec9561", "snapshot.xml"))
	v, err := NewValidator(Config{Source: MapSource(objects)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	res, err := v.Validate(context.Background(), []TrustAnchor{krillTA(t, dir)}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Errorf("problem: %v", p)
	}
	for _, ca := range res.CAs {
		if ca.Err != nil {
			t.Errorf("CA %s: %v", ca.URI, ca.Err)
		}
	}
	if len(res.CAs) != 12 {
		t.Errorf("got %d CAs, want 12", len(res.CAs))
	}
	oracle := realdata.Path(t, "krill-sync", "oracle")
	var csv bytes.Buffer
	if err := res.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, filepath.Join(oracle, "rpki-client-8.2.csv")); !bytes.Equal(csv.Bytes(), want) {
		t.Errorf("CSV differs from rpki-client's:\ngot:\n%s\nwant:\n%s", csv.Bytes(), want)
	}
	var js bytes.Buffer
	meta := JSONMeta{BuildMachine: "vm", BuildTime: now.Add(time.Second), TALFiles: []string{"/tmp/rrdp-origin/ta.tal"}}
	if err := res.WriteJSON(&js, meta); err != nil {
		t.Fatal(err)
	}
	want := readFile(t, filepath.Join(oracle, "rpki-client-8.2.json"))
	got, wantMasked := machineMeta.ReplaceAll(js.Bytes(), nil), machineMeta.ReplaceAll(want, nil)
	if !bytes.Equal(got, wantMasked) {
		os.WriteFile(filepath.Join(t.TempDir(), "got.json"), js.Bytes(), 0o644)
		t.Errorf("JSON differs from rpki-client's (machine lines masked):\ngot:\n%s\nwant:\n%s", got, wantMasked)
	}

	t.Run("reuse", func(t *testing.T) {
		again, err := v.Validate(context.Background(), []TrustAnchor{krillTA(t, dir)}, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if again.Stats.ReusedPoints != 12 || again.Stats.RevalidatedPoints != 0 {
			t.Errorf("second run: reused %d, revalidated %d publication points, want 12 and 0", again.Stats.ReusedPoints, again.Stats.RevalidatedPoints)
		}
		var csv2 bytes.Buffer
		again.WriteCSV(&csv2)
		if !bytes.Equal(csv2.Bytes(), csv.Bytes()) {
			t.Errorf("second run: CSV differs from the first")
		}
	})
	t.Run("a year later", func(t *testing.T) {
		late, err := v.Validate(context.Background(), []TrustAnchor{krillTA(t, dir)}, now.AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(late.VRPs) != 0 {
			t.Errorf("a year later: %d VRPs, want none", len(late.VRPs))
		}
		if late.Stats.ReusedPoints != 0 {
			t.Errorf("a year later: %d publication points reused", late.Stats.ReusedPoints)
		}
		failed := 0
		for _, ca := range late.CAs {
			if ca.Err != nil {
				failed++
			}
		}
		if failed == 0 {
			t.Error("a year later: no CA failed")
		}
	})
}
