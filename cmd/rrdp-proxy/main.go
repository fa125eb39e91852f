// Command rrdp-proxy is an RRDP edge for the RPKI: a verifying mirror,
// caching reverse proxy and CDN origin for RPKI repositories (RFC 8182),
// serving each repository both as XML and in the iRPKI protobuf layout.
//
// Each subcommand lives in its own file.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands; each file registers nothing globally:
// the table is built here.
func commands() []command {
	return []command{
		{"demo", "run on an embedded default, offline", runDemo},
		{"serve", "run the proxy from a configuration file", runServe},
		{"transcode", "convert an RRDP file between XML and .bin", runTranscode},
		{"inspect", "describe an RRDP file of either format", runInspect},
		{"version", "print the version", runVersion},
		{"gen", "generate a synthetic signed RPKI repository", runGen},
		{"sync", "keep a local copy of a repository", runSync},
		{"bench", "measure bandwidth and decoding speed", runBench},
	}
}

// errUsage marks a command-line mistake: the usage has been printed.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "rrdp-proxy %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "rrdp-proxy: unknown command %q\n", args[0])
	usage(stderr, cmds)
	return 2
}

func usage(w io.Writer, cmds []command) {
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	var b strings.Builder
	b.WriteString("usage: rrdp-proxy COMMAND [flags] [args]\n\ncommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	b.WriteString("\nrrdp-proxy COMMAND --help describes a command.\n")
	io.WriteString(w, b.String())
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints its usage line and defaults on --help.
func newFlags(name, args, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: rrdp-proxy %s %s\n\n%s\n", name, args, about)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses flags and checks the count of positional arguments.
func parse(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if nargs >= 0 && fs.NArg() != nargs {
		fmt.Fprintf(fs.Output(), "rrdp-proxy %s: want %d arguments, got %d\n", fs.Name(), nargs, fs.NArg())
		fs.Usage()
		return errUsage
	}
	return nil
}
