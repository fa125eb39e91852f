package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// script writes the completion script of shell into a temporary file.
func script(t *testing.T, shell string) string {
	t.Helper()
	code, out, stderr := runCLI(t, "completion", shell)
	if code != 0 {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
	}
	file := filepath.Join(t.TempDir(), "rrdp-proxy."+shell)
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestBashCompletion runs the bash completion function on command lines
// as bash's programmable completion calls it, and compares COMPREPLY.
func TestBashCompletion(t *testing.T) {
	rp.Require(t, "bash")
	file := script(t, "bash")
	for _, c := range []struct {
		words []string // the last is the word being completed
		want  []string
	}{
		{[]string{""}, []string{"compact", "completion", "config", "demo", "gen", "help", "inspect", "keygen", "man", "release", "serve", "sync", "transcode", "validate", "version"}},
		{[]string{"s"}, []string{"serve", "sync"}},
		{[]string{"--"}, []string{"--help", "--version"}},
		{[]string{"sync", "--o"}, []string{"--once", "--out"}},
		{[]string{"sync", "--out", ""}, nil}, // a directory: bash's file names
		{[]string{"sync", "--out", "d", "--in"}, []string{"--interval"}},
		{[]string{"sync", "https://x/notification.xml", "--st"}, []string{"--state"}},
		{[]string{"sync", ""}, nil}, // the URL: nothing offered
		{[]string{"config", ""}, []string{"check", "example", "reference"}},
		{[]string{"config", "check", "--"}, []string{"--help"}},
		{[]string{"serve", "--"}, []string{"--config", "--help"}},
		{[]string{"help", "tr"}, []string{"transcode"}},
		{[]string{"demo", "-"}, []string{"--every", "--key-cache", "--listen", "-v", "--help"}},
	} {
		words := append([]string{"rrdp-proxy"}, c.words...)
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + file + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
			"\n_rrdp_proxy\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: bash: %v\n%s", words, err, out)
		}
		got := strings.Fields(string(out))
		if !slices.Equal(got, c.want) {
			t.Errorf("complete %q: got %q, want %q", words, got, c.want)
		}
	}
}

// TestFishCompletion asks fish itself what it completes with the script
// loaded.
func TestFishCompletion(t *testing.T) {
	rp.Require(t, "fish")
	file := script(t, "fish")
	for _, c := range []struct {
		line string
		want []string
	}{
		{"rrdp-proxy sy", []string{"sync\tkeep a local copy of a repository"}},
		{"rrdp-proxy sync --o", []string{"--once\tsync once and exit", "--out\twrite the repository's objects under DIR (required)"}},
		{"rrdp-proxy sync --out d --in", []string{"--interval\ttime between polls"}},
		{"rrdp-proxy config ", []string{"check\tcheck a configuration file and print its effective settings", "example\tprint a commented example configuration", "reference\tprint the configuration reference in Markdown"}},
		{"rrdp-proxy help tr", []string{"transcode"}},
		{"rrdp-proxy --vers", []string{"--version\tprint the version"}},
	} {
		out, err := exec.Command("fish", "--no-config", "-c", "source "+file+"; complete -C '"+c.line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("%q: fish: %v\n%s", c.line, err, out)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if !slices.Equal(got, c.want) {
			t.Errorf("complete -C %q: got %q, want %q", c.line, got, c.want)
		}
	}
}

// TestZshCompletion checks the script's syntax and that loading it under
// compinit registers it for rrdp-proxy with a function per command. (Its
// completions are not driven here: zsh runs completion widgets only in an
// interactive line editor.)
func TestZshCompletion(t *testing.T) {
	rp.Require(t, "zsh")
	file := script(t, "zsh")
	if out, err := exec.Command("zsh", "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	prog := "autoload -U compinit && compinit -u -D && source " + file +
		" && print -r -- $_comps[rrdp-proxy] && whence -w _rrdp_proxy_sync _rrdp_proxy_config_check"
	out, err := exec.Command("zsh", "-f", "-c", prog).CombinedOutput()
	want := "_rrdp_proxy\n_rrdp_proxy_sync: function\n_rrdp_proxy_config_check: function\n"
	if err != nil || string(out) != want {
		t.Errorf("zsh: %v\ngot\n%s\nwant\n%s", err, out, want)
	}
}

// TestManPage renders rrdp-proxy's man page with a date, lints it with
// mandoc (no warning allowed), and checks that the rendered text shows
// every command and every flag of the tree: the page and --help come from
// one source.
func TestManPage(t *testing.T) {
	rp.Require(t, "mandoc")
	root := commands(new(bytes.Buffer), new(bytes.Buffer))
	var page bytes.Buffer
	if err := cli.Man(&page, root, cli.Page{Date: "2026-12-01", Sections: manSections}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rrdp-proxy.1")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mandoc", "-Tlint", "-W", "warning", file).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("mandoc -Tlint: %v\n%s", err, out)
	}
	text, err := exec.Command("mandoc", "-Tascii", "-O", "width=200", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	// mandoc -Tascii overstrikes bold and underlined text: drop that.
	plain := overstrike.ReplaceAllString(string(text), "")
	var walk func(prefix string, c *cli.Command)
	walk = func(prefix string, c *cli.Command) {
		for _, s := range c.Subs {
			name := strings.TrimSpace(prefix + " " + s.Name)
			if !strings.Contains(plain, "rrdp-proxy "+name) {
				t.Errorf("the man page lacks the command %q", name)
			}
			if s.Flags != nil {
				s.Flags.VisitAll(func(f *flag.Flag) {
					spelled := "--" + f.Name
					if len(f.Name) == 1 {
						spelled = "-" + f.Name
					}
					if !strings.Contains(plain, spelled) {
						t.Errorf("the man page lacks %s of %s", spelled, name)
					}
				})
			}
			walk(name, s)
		}
	}
	walk("", root)
	for _, w := range []string{"FILES", defaultConfigPath, "EXIT STATUS", "RRDP_PROXY_REDIS_PASSWORD"} {
		if !strings.Contains(plain, w) {
			t.Errorf("the man page lacks %q", w)
		}
	}
}

// overstrike is a character struck over by the next (bold, underline in
// mandoc's terminal output).
var overstrike = regexp.MustCompile(".\x08")
