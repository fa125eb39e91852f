package conf

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployExamples loads every example configuration of deploy/.
func TestDeployExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"single.toml": false, "reverse.toml": false, "mirror.toml": false, "fleet-node.toml": false}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(c.Repositories) == 0 {
				t.Error("no repository")
			}
			for i := range c.Repositories {
				r := &c.Repositories[i]
				if b := c.BaseURI(r); !strings.HasSuffix(b, "/") || !strings.HasPrefix(b, "http") {
					t.Errorf("%s: base URI %q", r.Name, b)
				}
			}
		})
		want[filepath.Base(f)] = true
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("deploy/examples/%s is missing", name)
		}
	}
}

// TestMirrorExample checks the IXP example's URLs: the five RIRs under the
// mirror's host name.
func TestMirrorExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "deploy", "examples", "mirror.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"afrinic": "https://rpki-mirror.ixp.example/rrdp.afrinic.net/",
		"apnic":   "https://rpki-mirror.ixp.example/rrdp.apnic.net/",
		"arin":    "https://rpki-mirror.ixp.example/rrdp.arin.net/",
		"lacnic":  "https://rpki-mirror.ixp.example/rrdp.lacnic.net/rrdp/",
		"ripe":    "https://rpki-mirror.ixp.example/rrdp.ripe.net/",
	}
	if len(c.Repositories) != len(want) {
		t.Fatalf("got %d repositories, want %d", len(c.Repositories), len(want))
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if got := c.BaseURI(r); got != want[r.Name] {
			t.Errorf("%s: got %q, want %q", r.Name, got, want[r.Name])
		}
	}
}
