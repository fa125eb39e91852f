package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testTAL is a TAL for a key made for this test (openssl genrsa 2048).
const testTAL = `https://localhost:3000/ta/ta.cer

MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAhXSTbAguh/hV3xD1gdhv
x9GlDfakPOeVEC8ObSwfw1oj/pUe2GZAt9oxv0WybIMqiFxu4ei11kGyI3GiwC36
phRjEIuthKd+ViVBj46K7FJlkCE+mIhdOeS5hUUYsW+NxyxyDuyy3MS0zbqojbRo
IOAbOMAlQTJ3RuAj31KPmMtsRahDaP5rsRbgO+FvLGtLqXOfsTAWRdx367lHMMFK
MWnSYwcPGGlCzgWBYveJR6WFZ8XvvpfkP9KQqoUu/MmjKzB5B88Tqm+gBLd6QOCe
+bbYKNcNsqBcYUiKTEl35Cz72fAnGPGnxbZfflGxmsCWWpKdMZ0fZfzeHQuGQdkJ
hwIDAQAB
`

func TestValidateTable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ta.tal"), []byte(testTAL), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.tal"), []byte("https://x/ta.cer\n\nnot base64!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "[server]\nmirror_base = \"https://m.example.net/\"\n"
	admin := "[server]\nmirror_base = \"https://m.example.net/\"\nadmin_listen = \"127.0.0.1:9090\"\n"
	for _, tc := range []struct {
		name, doc string
		want      string // a part of the error; "" for none
	}{
		{"observe", head + "[validate]\ntals = [\"ta.tal\"]\n" + minimal, ""},
		{"gate", admin + "[validate]\ntals = [\"ta.tal\"]\ngate = true\nmax_vrp_loss = 0.5\nca_invalid = true\n" + minimal, ""},
		{"no tals", head + "[validate]\ngate = false\n" + minimal, "cfg.toml:3: validate.tals: no TAL"},
		{"gate without admin", head + "[validate]\ntals = [\"ta.tal\"]\ngate = true\n" + minimal, "cfg.toml:5: validate.gate: needs server.admin_listen"},
		{"loss out of range", head + "[validate]\ntals = [\"ta.tal\"]\nmax_vrp_loss = 5\n" + minimal, "cfg.toml:5: validate.max_vrp_loss: want a fraction"},
		{"missing TAL", head + "[validate]\ntals = [\"none.tal\"]\n" + minimal, "cfg.toml:4: validate.tals: read TAL"},
		{"bad TAL", head + "[validate]\ntals = [\"bad.tal\"]\n" + minimal, "cfg.toml:4: validate.tals: TAL " + filepath.Join(dir, "bad.tal")},
		{"unknown key", head + "[validate]\ntals = [\"ta.tal\"]\ngates = true\n" + minimal, "cfg.toml:5: validate.gates: unknown key"},
		{"in a fleet", admin + "[cache.redis]\nurl = \"redis://127.0.0.1:6379/0\"\n[validate]\ntals = [\"ta.tal\"]\ngate = true\n" + minimal, ""},
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
			v := c.Validate
			if len(v.TrustAnchors) != 1 || v.TrustAnchors[0].Name != "ta" || v.TrustAnchors[0].TAL == nil {
				t.Fatalf("trust anchors: got %+v, want one named ta", v.TrustAnchors)
			}
			if got, want := v.TALs[0], filepath.Join(dir, "ta.tal"); got != want {
				t.Errorf("tals: got %q, want %q", got, want)
			}
			if v.Interval.Duration != 10*time.Minute || v.MaxASPALoss != 0.05 {
				t.Errorf("defaults: got interval %v, max_aspa_loss %v, want 10m and 0.05", v.Interval, v.MaxASPALoss)
			}
		})
	}
	if c := mustParse(t, head+minimal); c.Validate != nil {
		t.Errorf("without [validate]: got %+v, want none", c.Validate)
	}
}
