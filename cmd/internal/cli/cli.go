// Package cli implements the command lines of rrdp-proxy and
// rrdp-proxy-bench: a tree of commands, each with its flag set, its help
// text and its positional arguments, run by Main with the conventions an
// operator expects of a Unix tool:
//
//   - --help and -h (at any level) and "PROG help CMD..." print the help on
//     stdout and exit 0; --version and -V print the version;
//   - flags may follow positional arguments ("sync URL --out DIR --once");
//     "--" ends the flags;
//   - a usage error is one line and a hint on stderr ("run 'PROG help
//     CMD' for usage"), exit status 2; any other error one line, exit 1,
//     or the status a StatusError carries (3 and above).
//
// The same tree generates the man page (Man, roff) and the shell
// completions (Completion: bash, zsh, fish), so that they never disagree
// with --help.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Many is the MaxArgs of a command that takes any number of arguments.
const Many = -1

// Command is one command of the tree: the root (the program), a group of
// subcommands, or a leaf that runs.
type Command struct {
	// Name is the word that selects the command; the root's is the
	// program's name.
	Name string
	// Args is what follows the command's name in its usage line, such as
	// "[flags] --out DIR NOTIFICATION_URL". Empty: the command takes
	// nothing.
	Args string
	// Summary is one line for the list of commands: lowercase, no period.
	Summary string
	// About is the long description: paragraphs separated by blank lines;
	// a paragraph whose lines are all indented is kept as it is (a table
	// or an example), the others are reflowed by the man page.
	About string
	// Flags are the command's flags; nil means none. Main sets their
	// output and usage function; a Command's Run reads the values they
	// were bound to.
	Flags *flag.FlagSet
	// MinArgs and MaxArgs bound the number of positional arguments of a
	// leaf (MaxArgs Many: no upper bound). Both zero: none.
	MinArgs, MaxArgs int
	// Run runs a leaf with its positional arguments, after its flags were
	// parsed. A UsageError it returns is reported as one.
	Run func(args []string) error
	// Subs are the subcommands of a group (or of the root).
	Subs []*Command
	// Version, on the root, is what --version and -V print after the
	// program's name.
	Version string
}

// UsageError is a mistake on the command line: Main prints it with a hint
// to the help and exits with status 2.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// StatusError is a failure with an exit status of its own (above ExitUsage),
// for a command whose callers branch on the status: Main prints Err as any
// error and exits with Code.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }

func (e *StatusError) Unwrap() error { return e.Err }

// Exit statuses.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed
	ExitUsage = 2 // the command line is wrong
)

// Main runs the command that args (os.Args[1:]) select in the tree under
// root and returns the process's exit status.
func Main(root *Command, args []string, stdout, stderr io.Writer) int {
	path := []*Command{root}
	for {
		c := path[len(path)-1]
		if len(c.Subs) == 0 {
			break
		}
		if len(args) == 0 {
			if c == root {
				// Nothing typed: the list of commands is the answer, on
				// stderr since nothing ran (as go and git do).
				writeHelp(stderr, path)
				return ExitUsage
			}
			return usageError(stderr, path, "want a command: "+strings.Join(names(c.Subs), ", "))
		}
		switch a := args[0]; {
		case isHelpFlag(a):
			writeHelp(stdout, path)
			return ExitOK
		case c == root && (a == "-V" || a == "--version" || a == "-version"):
			fmt.Fprintf(stdout, "%s %s\n", root.Name, root.Version)
			return ExitOK
		case a == "help" && c == root:
			return help(root, args[1:], stdout, stderr)
		case strings.HasPrefix(a, "-") && a != "-":
			return usageError(stderr, path, "flag provided but not defined: "+a)
		}
		sub := c.sub(args[0])
		if sub == nil {
			return usageError(stderr, path, fmt.Sprintf("unknown command %q", args[0]))
		}
		path = append(path, sub)
		args = args[1:]
	}
	c := path[len(path)-1]
	fs := c.flagSet(path)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(stdout, path)
		return ExitOK
	}
	if err != nil {
		return usageError(stderr, path, dashes.ReplaceAllString(err.Error(), "$1--$2"))
	}
	if err := c.checkArgs(len(pos)); err != nil {
		return usageError(stderr, path, err.Error())
	}
	if c.Run == nil {
		fmt.Fprintf(stderr, "%s: no action\n", pathName(path))
		return ExitError
	}
	err = c.Run(pos)
	var uerr *UsageError
	var xerr *StatusError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &uerr):
		return usageError(stderr, path, uerr.Msg)
	case errors.As(err, &xerr) && xerr.Code > ExitUsage:
		fmt.Fprintf(stderr, "%s: %v\n", pathName(path), err)
		return xerr.Code
	}
	fmt.Fprintf(stderr, "%s: %v\n", pathName(path), err)
	return ExitError
}

// help answers "PROG help [CMD...]".
func help(root *Command, topic []string, stdout, stderr io.Writer) int {
	if len(topic) == 1 && topic[0] == helpDoc.Name {
		writeHelp(stdout, []*Command{root, helpDoc})
		return ExitOK
	}
	path, err := root.find(topic)
	if err != nil {
		return usageError(stderr, []*Command{root}, err.Error())
	}
	writeHelp(stdout, path)
	return ExitOK
}

// find returns the path of commands that names select, from root.
func (root *Command) find(names []string) ([]*Command, error) {
	path := []*Command{root}
	for _, n := range names {
		sub := path[len(path)-1].sub(n)
		if sub == nil {
			return nil, fmt.Errorf("unknown command %q", strings.Join(names, " "))
		}
		path = append(path, sub)
	}
	return path, nil
}

func (c *Command) sub(name string) *Command {
	for _, s := range c.Subs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// flagSet returns the command's flags, ready to parse: errors returned,
// nothing printed.
func (c *Command) flagSet(path []*Command) *flag.FlagSet {
	fs := c.Flags
	if fs == nil {
		fs = flag.NewFlagSet(pathName(path), flag.ContinueOnError)
	}
	fs.Init(pathName(path), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// checkArgs checks the number of positional arguments.
func (c *Command) checkArgs(n int) error {
	lo, hi := c.MinArgs, c.MaxArgs
	switch {
	case lo == hi && n != lo:
		return fmt.Errorf("want %s, got %d", count(lo, "argument"), n)
	case n < lo:
		return fmt.Errorf("want at least %s, got %d", count(lo, "argument"), n)
	case hi != Many && n > hi:
		return fmt.Errorf("want at most %s, got %d", count(hi, "argument"), n)
	}
	return nil
}

// dashes finds the flag names in package flag's errors, which it writes
// with one dash, to write them as the help does: --name.
var dashes = regexp.MustCompile(`(: |flag |for )-([A-Za-z0-9][A-Za-z0-9_-]+)`)

func count(n int, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// parseInterspersed parses the flags in args wherever they are and
// returns the positional arguments in order. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		// Parse stopped at a positional argument.
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func isHelpFlag(a string) bool {
	return a == "-h" || a == "--help" || a == "-help"
}

// usageError prints a usage mistake as one line and a hint.
func usageError(w io.Writer, path []*Command, msg string) int {
	fmt.Fprintf(w, "%s: %s\nrun '%s' for usage\n", pathName(path), msg, helpCommand(path))
	return ExitUsage
}

// helpCommand is the command line that shows the help of path.
func helpCommand(path []*Command) string {
	if len(path) == 1 {
		return path[0].Name + " help"
	}
	words := []string{path[0].Name, "help"}
	for _, c := range path[1:] {
		words = append(words, c.Name)
	}
	return strings.Join(words, " ")
}

// pathName is the command as typed: "rrdp-proxy config check".
func pathName(path []*Command) string {
	words := make([]string, len(path))
	for i, c := range path {
		words[i] = c.Name
	}
	return strings.Join(words, " ")
}

// names lists the names of cmds, sorted.
func names(cmds []*Command) []string {
	var n []string
	for _, c := range cmds {
		n = append(n, c.Name)
	}
	slices.Sort(n)
	return n
}

// sorted returns cmds sorted by name.
func sorted(cmds []*Command) []*Command {
	s := slices.Clone(cmds)
	slices.SortFunc(s, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// walk calls f for every command under root, depth first, subcommands in
// name order, with the path that leads to it.
func walk(root *Command, f func(path []*Command)) {
	var rec func(path []*Command)
	rec = func(path []*Command) {
		f(path)
		for _, s := range sorted(path[len(path)-1].Subs) {
			rec(append(slices.Clip(path), s))
		}
	}
	rec([]*Command{root})
}
