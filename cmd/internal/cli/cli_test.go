package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// toy is a small tree: a leaf with flags and arguments, a group, and a
// leaf whose Run fails.
type toy struct {
	root            *Command
	out             string
	n               int
	verbose         bool
	ran             []string // the positional arguments of the last run
	stdout, stderr  bytes.Buffer
	failWith, usage error
}

func newToy() *toy {
	t := &toy{}
	fs := flag.NewFlagSet("copy", flag.ContinueOnError)
	fs.StringVar(&t.out, "out", "", "write into `DIR`")
	fs.IntVar(&t.n, "n", 1, "copies")
	fs.BoolVar(&t.verbose, "verbose", false, "say more")
	t.root = &Command{Name: "toy", Summary: "a toy", About: "A toy program.", Version: "v1.0.0"}
	t.root.Subs = []*Command{
		{
			Name: "copy", Args: "[flags] SRC...", Summary: "copy files", About: "Copy SRC.\n\n  an indented\n  block",
			Flags: fs, MinArgs: 1, MaxArgs: Many,
			Run: func(args []string) error { t.ran = args; return t.failWith },
		},
		{
			Name: "group", Summary: "a group",
			Subs: []*Command{{Name: "leaf", Args: "[ARG]", Summary: "a leaf", MaxArgs: 1, Run: func(args []string) error { t.ran = args; return nil }}},
		},
		CompletionCommand(t.root, &t.stdout),
		ManCommand(t.root, &t.stdout, Page{Date: "2026-01-02"}),
	}
	return t
}

func (t *toy) run(args ...string) int {
	t.stdout.Reset()
	t.stderr.Reset()
	return Main(t.root, args, &t.stdout, &t.stderr)
}

func TestInterspersedFlags(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		ran     []string
		out     string
		n       int
		verbose bool
	}{
		{"flags first", []string{"copy", "--out", "d", "-n", "2", "a", "b"}, []string{"a", "b"}, "d", 2, false},
		{"flags last", []string{"copy", "a", "b", "--out", "d", "--verbose"}, []string{"a", "b"}, "d", 1, true},
		{"flags between", []string{"copy", "a", "--out=d", "b", "-n=3"}, []string{"a", "b"}, "d", 3, false},
		{"dash is an argument", []string{"copy", "-", "--verbose"}, []string{"-"}, "", 1, true},
		{"double dash ends flags", []string{"copy", "a", "--", "--out", "d"}, []string{"a", "--out", "d"}, "", 1, false},
		{"bool then argument", []string{"copy", "--verbose", "a"}, []string{"a"}, "", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			toy := newToy()
			if code := toy.run(c.args...); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, toy.stderr.String())
			}
			if !slices.Equal(toy.ran, c.ran) || toy.out != c.out || toy.n != c.n || toy.verbose != c.verbose {
				t.Errorf("got args %q out %q n %d verbose %v, want %q %q %d %v", toy.ran, toy.out, toy.n, toy.verbose, c.ran, c.out, c.n, c.verbose)
			}
		})
	}
}

func TestExitStatusAndStreams(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		failWith   error
		code       int
		stdout     string // prefix
		stderr     string // exact
		stdoutNone bool
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: "usage: toy COMMAND [flags] [args]\n\nA toy program.\n"},
		{name: "help cmd", args: []string{"help", "group", "leaf"}, code: 0, stdout: "usage: toy group leaf [ARG]\n"},
		{name: "leaf -h", args: []string{"copy", "x", "-h"}, code: 0, stdout: "usage: toy copy [flags] SRC...\n"},
		{name: "group help", args: []string{"group", "--help"}, code: 0, stdout: "usage: toy group COMMAND\n"},
		{name: "version", args: []string{"-V"}, code: 0, stdout: "toy v1.0.0\n"},
		{name: "nothing", args: nil, code: 2, stdoutNone: true},
		{name: "unknown", args: []string{"nope"}, code: 2, stderr: "toy: unknown command \"nope\"\nrun 'toy help' for usage\n"},
		{name: "group without command", args: []string{"group"}, code: 2, stderr: "toy group: want a command: leaf\nrun 'toy help group' for usage\n"},
		{name: "too few", args: []string{"copy"}, code: 2, stderr: "toy copy: want at least 1 argument, got 0\nrun 'toy help copy' for usage\n"},
		{name: "too many", args: []string{"group", "leaf", "a", "b"}, code: 2, stderr: "toy group leaf: want at most 1 argument, got 2\nrun 'toy help group leaf' for usage\n"},
		{name: "bad flag", args: []string{"copy", "a", "--nope"}, code: 2, stderr: "toy copy: flag provided but not defined: --nope\nrun 'toy help copy' for usage\n"},
		{name: "bad value", args: []string{"copy", "a", "-n", "x"}, code: 2, stderr: "toy copy: invalid value \"x\" for flag -n: parse error\nrun 'toy help copy' for usage\n"},
		{name: "run fails", args: []string{"copy", "a"}, failWith: errors.New("copy a: disk full"), code: 1, stderr: "toy copy: copy a: disk full\n"},
		{name: "run usage", args: []string{"copy", "a"}, failWith: Usagef("--out %q: no", "x"), code: 2, stderr: "toy copy: --out \"x\": no\nrun 'toy help copy' for usage\n"},
		{name: "run exit 3", args: []string{"copy", "a"}, failWith: fmt.Errorf("wrapped: %w", &StatusError{Code: 3, Err: errors.New("copy a: stale")}), code: 3, stderr: "toy copy: wrapped: copy a: stale\n"},
		{name: "run exit 2 is not usage", args: []string{"copy", "a"}, failWith: &StatusError{Code: 2, Err: errors.New("copy a: odd")}, code: 1, stderr: "toy copy: copy a: odd\n"},
		{name: "help unknown", args: []string{"help", "group", "nope"}, code: 2, stderr: "toy: unknown command \"group nope\"\nrun 'toy help' for usage\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			toy := newToy()
			toy.failWith = c.failWith
			code := toy.run(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, c.code, toy.stderr.String())
			}
			if c.code == 0 {
				if !strings.HasPrefix(toy.stdout.String(), c.stdout) || toy.stderr.Len() != 0 {
					t.Errorf("stdout %q, stderr %q; want stdout starting %q and no stderr", toy.stdout.String(), toy.stderr.String(), c.stdout)
				}
				return
			}
			if toy.stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", toy.stdout.String())
			}
			if !c.stdoutNone && toy.stderr.String() != c.stderr {
				t.Errorf("stderr %q, want %q", toy.stderr.String(), c.stderr)
			}
		})
	}
}

func TestHelpListsFlagsAndCommands(t *testing.T) {
	toy := newToy()
	toy.run("help", "copy")
	want := `usage: toy copy [flags] SRC...

Copy SRC.

  an indented
  block

flags:
  -n INT
        copies (default 1)
  --out DIR
        write into DIR
  --verbose
        say more
`
	if got := toy.stdout.String(); got != want {
		t.Errorf("help copy:\ngot\n%s\nwant\n%s", got, want)
	}
	toy.run("help")
	for _, w := range []string{"  completion  print the shell completion script\n", "  help        show the help of a command\n", "  --version\n"} {
		if !strings.Contains(toy.stdout.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, toy.stdout.String())
		}
	}
}

func TestManRoff(t *testing.T) {
	toy := newToy()
	if code := toy.run("man"); code != 0 {
		t.Fatalf("man: exit %d: %s", code, toy.stderr.String())
	}
	page := toy.stdout.String()
	for _, w := range []string{
		".TH \"TOY\" 1 \"2026-01-02\" \"toy v1.0.0\" \"User Commands\"\n",
		".SS \"toy copy [flags] SRC...\"\nCopy SRC.\n.PP\n.nf\n.RS 2\nan indented\nblock\n.RE\n.fi\n",
		".TP\n.B \\-\\-out \\fIDIR\\fR\nwrite into DIR\n",
		".TP\n.B \\-n \\fIINT\\fR\ncopies (default 1)\n",
		".B toy group leaf\n[ARG]\n",
	} {
		if !strings.Contains(page, w) {
			t.Errorf("man page lacks %q:\n%s", w, page)
		}
	}
	toy.run("man")
	if toy.stdout.String() != page {
		t.Error("two runs of man differ")
	}
}

func TestRoffEscape(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:           `a\eb`,
		"--out":         `\-\-out`,
		".starts a dot": `\&.starts a dot`,
		"'quote":        `\&'quote`,
	} {
		if got := roffLine(in); got != want {
			t.Errorf("roffLine(%q) = %q, want %q", in, got, want)
		}
	}
}
