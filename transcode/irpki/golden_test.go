package irpki_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The golden fixture: a small synthetic repository (random object bytes, so
// no validity dates are involved) in XML, and the .bin our encoder must
// give for it, byte for byte. Regenerate with go test -run Golden -update.
var goldenSpec = irpkitest.Spec{Seed: 2025, Objects: 12, Dirs: 3, MinSize: 16, MaxSize: 64, Interleave: true}

func TestGolden(t *testing.T) {
	var delta bytes.Buffer
	if err := irpkitest.WriteDelta(&delta, goldenSpec, goldenSpec.Serial+1, 3, 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		xml  []byte
	}{
		{"small-snapshot", synthSnapshot(t, goldenSpec)},
		{"small-delta", delta.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xmlPath := filepath.Join("testdata", tc.name+".xml")
			binPath := filepath.Join("testdata", tc.name+".bin")
			bin, _ := toBin(t, tc.xml)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(xmlPath, tc.xml, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(binPath, bin, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantXML, err := os.ReadFile(xmlPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(wantXML, tc.xml) {
				t.Errorf("the generator no longer gives %s", xmlPath)
			}
			want, err := os.ReadFile(binPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bin, want) {
				t.Errorf("XMLToBin(%s) differs from %s: %d bytes, want %d", xmlPath, binPath, len(bin), len(want))
			}
			checkRoundTrip(t, wantXML)
		})
	}
}
