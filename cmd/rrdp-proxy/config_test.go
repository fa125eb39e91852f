package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/conf"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigExampleIsChecked(t *testing.T) {
	code, out, errOut := runCLI(t, "config", "example")
	if code != 0 || out != string(conf.Example()) {
		t.Fatalf("config example: exit %d, stderr %q; output differs from conf.Example()", code, errOut)
	}
	p := writeFile(t, "example.toml", out)
	code, out, errOut = runCLI(t, "config", "check", p)
	if code != 0 {
		t.Fatalf("config check of the example: exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		p + ": ok, 1 repository\n",
		"  ripe (mirror) follows https://rrdp.ripe.net/notification.xml\n",
		"    serves https://mirror.example.net/rrdp.ripe.net/notification.bin\n",
		"\n[server]\nlisten = [\"127.0.0.1:8080\"]\n",
		"max_snapshot_size = \"4GiB\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
}

// TestConfigCheckFetchFrom: config check says where a repository with
// fetch_from is fetched from, and with which names.
func TestConfigCheckFetchFrom(t *testing.T) {
	p := writeFile(t, "ff.toml", `[[repository]]
name = "rir"
origin = "https://rrdp.example.net/rrdp/notification.xml"
fetch_from = "http://10.0.0.5:8081"
mode = "reverse"
hosts = ["rrdp.example.net"]

[[repository]]
name = "tls"
origin = "https://rrdp.example.org/rrdp/notification.xml"
fetch_from = "https://10.0.0.6:8443"
mode = "reverse"
hosts = ["rrdp.example.org"]
`)
	code, out, errOut := runCLI(t, "config", "check", p)
	if code != 0 {
		t.Fatalf("config check: exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"  rir (reverse) follows https://rrdp.example.net/rrdp/notification.xml\n" +
			"    fetches https://rrdp.example.net:443 from http://10.0.0.5:8081 (Host header rrdp.example.net; plain http, no TLS: a private link)\n",
		"  tls (reverse) follows https://rrdp.example.org/rrdp/notification.xml\n" +
			"    fetches https://rrdp.example.org:443 from https://10.0.0.6:8443 (Host header and TLS name rrdp.example.org: the certificate must be valid for it)\n",
		"fetch_from = \"http://10.0.0.5:8081\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigCheckMistakes(t *testing.T) {
	p := writeFile(t, "bad.toml", `[server]
listen = ["127.0.0.1:8080"]
read_timout = "30s"

[[repository]]
name = "ripe"
origin = "https://rrdp.ripe.net/notification.xml"
poll_interval = "soon"
`)
	code, out, errOut := runCLI(t, "config", "check", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, out)
	}
	want := p + `:3: server.read_timout: unknown key (did you mean read_timeout?)
` + p + `:8: repository[0].poll_interval: want a duration such as "90s", "30m" or "2h", got "soon"
rrdp-proxy config check: ` + p + `: 2 mistakes
`
	if errOut != want {
		t.Errorf("stderr:\ngot  %q\nwant %q", errOut, want)
	}
}

func TestConfigUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout with exit 0, else in stderr
	}{
		{[]string{"config", "--help"}, 0, "usage: rrdp-proxy config COMMAND"},
		{[]string{"config", "check", "--help"}, 0, "usage: rrdp-proxy config check [FILE]"},
		{[]string{"config", "example", "--help"}, 0, "usage: rrdp-proxy config example"},
		{[]string{"config", "reference", "-h"}, 0, "usage: rrdp-proxy config reference"},
		{[]string{"config"}, 2, "want a command: check, example, reference"},
		{[]string{"config", "lint"}, 2, `unknown command "lint"`},
		{[]string{"config", "check", filepath.Join(t.TempDir(), "none.toml")}, 1, "no such file"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if tc.code == 0 {
			errOut = out
		}
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if code, out, _ := runCLI(t, "config", "reference"); code != 0 || out != string(conf.Reference()) {
		t.Errorf("config reference: exit %d, output differs from conf.Reference()", code)
	}
}

// TestConfigCheckAdmin: config check names the admin listener and pprof.
func TestConfigCheckAdmin(t *testing.T) {
	p := writeFile(t, "admin.toml", `[server]
listen = ["127.0.0.1:8080"]
admin_listen = "127.0.0.1:9090"
pprof = true
mirror_base = "https://m.example.net/"
[[repository]]
name = "ripe"
origin = "https://rrdp.ripe.net/notification.xml"
mode = "mirror"
`)
	code, out, errOut := runCLI(t, "config", "check", p)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"operator pages (/metrics, /status, /status.json, /healthz, /readyz and /debug/pprof/) on http://127.0.0.1:9090/ only\n",
		"admin_listen = \"127.0.0.1:9090\"\npprof = true\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}
}
