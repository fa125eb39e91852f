package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestCLIGolden")

// cliCase is one command line and the name of its golden file.
type cliCase struct {
	name string
	args []string
}

// cliCases are the command lines whose whole output is kept in
// testdata/cli/NAME.golden: help in every form, the version, and usage
// errors.
var cliCases = []cliCase{
	{"root-help", []string{"--help"}},
	{"root-h", []string{"-h"}},
	{"root-help-cmd", []string{"help"}},
	{"root-none", nil},
	{"version-flag", []string{"--version"}},
	{"version-V", []string{"-V"}},
	{"version-cmd", []string{"version"}},
	{"help-serve", []string{"help", "serve"}},
	{"serve-help", []string{"serve", "--help"}},
	{"help-sync", []string{"help", "sync"}},
	{"help-config", []string{"help", "config"}},
	{"help-config-check", []string{"help", "config", "check"}},
	{"config-check-h", []string{"config", "check", "-h"}},
	{"help-transcode", []string{"help", "transcode"}},
	{"help-completion", []string{"help", "completion"}},
	{"help-help", []string{"help", "help"}},
	{"err-unknown-command", []string{"nope"}},
	{"err-unknown-root-flag", []string{"--nope"}},
	{"err-help-unknown", []string{"help", "nope"}},
	{"err-unknown-flag", []string{"sync", "--nope", "https://x/notification.xml"}},
	{"err-sync-no-out", []string{"sync", "https://x/notification.xml", "--once"}},
	{"err-sync-no-url", []string{"sync", "--out", "dir"}},
	{"err-sync-two-urls", []string{"sync", "https://a/notification.xml", "--out", "dir", "https://b/notification.xml"}},
	{"err-flag-value", []string{"sync", "--interval", "soon", "https://x/notification.xml"}},
	{"err-flag-no-value", []string{"sync", "https://x/notification.xml", "--out"}},
	{"err-config-none", []string{"config"}},
	{"err-config-unknown", []string{"config", "lint"}},
	{"err-config-check-two", []string{"config", "check", "a.toml", "b.toml"}},
	{"err-transcode-to", []string{"transcode", "--to", "json", "a", "b"}},
	{"err-transcode-one", []string{"transcode", "a"}},
	{"err-version-arg", []string{"version", "x"}},
	{"err-completion-shell", []string{"completion", "tcsh"}},
	{"err-demo-every", []string{"demo", "--every", "0s"}},
}

// goldenVersion stands in for the version in the golden files.
const goldenVersion = "v0.0.0-golden"

// TestCLIGolden runs each of cliCases and compares exit status, stdout
// and stderr with its golden file. go test -run CLIGolden -update
// rewrites them.
func TestCLIGolden(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = goldenVersion
	for _, c := range cliCases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			got := formatRun(c.args, code, stdout, stderr)
			file := filepath.Join("testdata", "cli", c.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -run CLIGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("rrdp-proxy %s:\ngot\n%s\nwant\n%s", strings.Join(c.args, " "), got, want)
			}
		})
	}
}

// formatRun is the golden form of one run.
func formatRun(args []string, code int, stdout, stderr string) string {
	var b strings.Builder
	b.WriteString("$ rrdp-proxy " + strings.Join(args, " ") + "\n")
	b.WriteString("exit " + string(rune('0'+code)) + "\n")
	b.WriteString("-- stdout --\n" + stdout)
	b.WriteString("-- stderr --\n" + stderr)
	return b.String()
}

// TestCLIConventions checks the rules the golden files show, for every
// command of the tree rather than the few kept there.
func TestCLIConventions(t *testing.T) {
	var paths [][]string
	var rec func(prefix []string, c *cli.Command)
	rec = func(prefix []string, c *cli.Command) {
		for _, s := range c.Subs {
			p := append(append([]string(nil), prefix...), s.Name)
			paths = append(paths, p)
			rec(p, s)
		}
	}
	rec(nil, commands(new(bytes.Buffer), new(bytes.Buffer)))
	if len(paths) < 12 {
		t.Fatalf("found %d commands, want every command of the tree: %q", len(paths), paths)
	}
	for _, p := range paths {
		name := strings.Join(p, " ")
		code, help, stderr := runCLI(t, append([]string{"help"}, p...)...)
		if code != 0 || stderr != "" || !strings.HasPrefix(help, "usage: rrdp-proxy "+name) {
			t.Errorf("help %s: exit %d, stderr %q, stdout %q; want exit 0 and the usage on stdout", name, code, stderr, help)
		}
		for _, h := range []string{"--help", "-h"} {
			code, out, stderr := runCLI(t, append(append([]string(nil), p...), h)...)
			if code != 0 || stderr != "" || out != help {
				t.Errorf("%s %s: exit %d, stderr %q; want exit 0 and the output of help %s on stdout", name, h, code, stderr, name)
			}
		}
		// A flag nobody defines is a usage error: one line and the hint.
		code, out, stderr := runCLI(t, append(append([]string(nil), p...), "--no-such-flag")...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 2 || out != "" || len(lines) != 2 || lines[1] != "run 'rrdp-proxy help "+name+"' for usage" {
			t.Errorf("%s --no-such-flag: exit %d, stdout %q, stderr %q; want exit 2 and two lines on stderr", name, code, out, stderr)
		}
	}
}

// TestFlagsAfterArguments checks that flags after positional arguments
// are flags: sync URL --out DIR --once runs (and fails on the
// unreachable origin, exit 1), and -- ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tree")
	code, _, stderr := runCLI(t, "sync", "http://127.0.0.1:1/notification.xml", "--out", out, "--once")
	if code != 1 || strings.Contains(stderr, "argument") || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("sync URL --out DIR --once: exit %d, stderr %q; want exit 1 from the fetch", code, stderr)
	}
	code, _, stderr = runCLI(t, "inspect", "--", "--json")
	if code != 1 || !strings.Contains(stderr, "--json") {
		t.Errorf("inspect -- --json: exit %d, stderr %q; want exit 1 reading a file named --json", code, stderr)
	}
	in := filepath.Join(t.TempDir(), "in.xml")
	if err := os.WriteFile(in, []byte("<notification/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "transcode", in, "--to", "json", filepath.Join(t.TempDir(), "out"))
	if code != 2 || !strings.Contains(stderr, `--to "json"`) {
		t.Errorf("transcode IN --to json OUT: exit %d, stderr %q; want the --to mistake", code, stderr)
	}
}

// TestDefaultConfig runs config check without FILE: it reads the default
// configuration file.
func TestDefaultConfig(t *testing.T) {
	defer func(c string) { defaultConfig = c }(defaultConfig)
	defaultConfig = writeFile(t, "rrdp-proxy.toml", `[server]
mirror_base = "https://mirror.example.net/"

[[repository]]
name = "a"
origin = "https://rrdp.example.net/notification.xml"
`)
	code, out, stderr := runCLI(t, "config", "check")
	if code != 0 || !strings.HasPrefix(out, defaultConfig+": ok, 1 repository") {
		t.Errorf("config check: exit %d, stdout %q, stderr %q; want the default file checked", code, out, stderr)
	}
	defaultConfig = filepath.Join(t.TempDir(), "none.toml")
	code, _, stderr = runCLI(t, "serve")
	if code != 1 || !strings.Contains(stderr, defaultConfig) {
		t.Errorf("serve: exit %d, stderr %q; want exit 1 naming %s", code, stderr, defaultConfig)
	}
}
