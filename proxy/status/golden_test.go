package status

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		write  func(io.Writer, *Report) error
		report func() *Report
	}{
		{"status.html", WriteHTML, fixture},
		{"status.json", WriteJSON, fixture},
		{"status-validation.html", WriteHTML, validationFixture},
		{"status-validation.json", WriteJSON, validationFixture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := tt.write(&got, tt.report()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs from %s (run go test -update and review the diff):\n%s", tt.name, path, firstDiff(got.Bytes(), want))
			}
		})
	}
}

// TestDeterministic renders the same facts given in another order and
// with fresh maps: the bytes must not change.
func TestDeterministic(t *testing.T) {
	for _, write := range []func(io.Writer, *Report) error{WriteHTML, WriteJSON} {
		var a, b bytes.Buffer
		if err := write(&a, fixture()); err != nil {
			t.Fatal(err)
		}
		r := fixture()
		for i, j := 0, len(r.Repos)-1; i < j; i, j = i+1, j-1 {
			r.Repos[i], r.Repos[j] = r.Repos[j], r.Repos[i]
		}
		for range 20 {
			b.Reset()
			if err := write(&b, r); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatalf("output depends on repository order or map iteration:\n%s", firstDiff(b.Bytes(), a.Bytes()))
			}
		}
		if r.Repos[0].Name != "krill-ca" {
			t.Errorf("renderer reordered the caller's slice: first repo %q", r.Repos[0].Name)
		}
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return "line " + strconv.Itoa(i+1) + "\n got: " + string(gl) + "\nwant: " + string(wl)
		}
	}
	return "(no line differs)"
}
