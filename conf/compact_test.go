package conf

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

func TestCompactTable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	key := func(seed byte) []byte {
		b, err := compact.MarshalPrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write("ta.tal", []byte(testTAL), 0o644)
	write("key.pem", key(1), 0o600)
	write("next.pem", key(2), 0o600)
	write("open.pem", key(3), 0o644)
	write("junk.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	head := "[server]\nmirror_base = \"https://m.example.net/\"\n"
	validate := "[validate]\ntals = [\"ta.tal\"]\n"
	repo := "[[repository]]\nname = \"r\"\norigin = \"https://o.example.net/rrdp/notification.xml\"\nformats = [\"xml\", \"bin\", \"compact\"]\n"
	for _, tc := range []struct {
		name, doc string
		want      string // a part of the error; "" for none
	}{
		{"served", head + validate + "[compact]\nkey = \"key.pem\"\n" + repo, ""},
		{"rollover", head + validate + "[compact]\nkey = \"key.pem\"\nrollover_key = \"next.pem\"\n" + repo, ""},
		{"no compact table", head + validate + repo, "repository[0].formats: \"compact\" needs a [compact] table"},
		{"no validate", head + "[compact]\nkey = \"key.pem\"\n" + repo, "repository[0].formats: \"compact\" needs [validate]"},
		{"no key", head + validate + "[compact]\nmax_deltas = 5\n" + repo, "compact.key: missing"},
		{"readable key", head + validate + "[compact]\nkey = \"open.pem\"\n" + repo, "has mode 0644: a private key must be readable by its owner only"},
		{"not a key", head + validate + "[compact]\nkey = \"junk.pem\"\n" + repo, "compact.key: " + filepath.Join(dir, "junk.pem")},
		{"same key twice", head + validate + "[compact]\nkey = \"key.pem\"\nrollover_key = \"key.pem\"\n" + repo, "compact.rollover_key: the same key"},
		{"no deltas", head + validate + "[compact]\nkey = \"key.pem\"\nmax_deltas = 0\n" + repo, "compact.max_deltas: want at least 1"},
		// The holder of a repository's lease publishes it (proxy/fleet compact.go).
		{"in a fleet", head + "[cache.redis]\nurl = \"redis://127.0.0.1:6379/0\"\n" + validate + "[compact]\nkey = \"key.pem\"\n" + repo, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), filepath.Join(dir, "cfg.toml"))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.Repositories[0].Serves("compact") || len(c.Compact.KeyPEM) == 0 || c.Compact.MaxDeltas != 100 {
				t.Fatalf("got compact %+v, served %v; want the key read, 100 deltas, served", c.Compact, c.Repositories[0].Serves("compact"))
			}
			if (c.Compact.RolloverKey != "") != (len(c.Compact.RolloverPEM) > 0) {
				t.Fatalf("rollover key %q read as %d bytes", c.Compact.RolloverKey, len(c.Compact.RolloverPEM))
			}
		})
	}
}
