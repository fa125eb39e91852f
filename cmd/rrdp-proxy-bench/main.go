// Command rrdp-proxy-bench holds the developer benchmarks of rrdp-proxy:
// what the iRPKI layout saves (bandwidth), how fast relying parties decode
// it (decode), the HTTP server against nginx (http), and rrdp-proxy serve
// processes following a repository (follow). They generate
// repositories with the test rig (transcode/rpki/repotest and its rp
// package, which drives nginx), which is why they live apart from the
// shipped rrdp-proxy binary.
//
// Every benchmark prints its report on stdout and writes files only where
// its --out flag says.
package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
)

const rootAbout = `Measure what the iRPKI layout saves, and how fast relying parties decode it;
measure the HTTP server against nginx; measure rrdp-proxy serve following
a repository (time to a new serial, memory, faults, a soak). Each benchmark prints its report
(Markdown) on stdout and writes files only into --out; the committed
reports are in docs/bench (--out docs/bench).`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Main(commands(stdout, stderr), args, stdout, stderr)
}

// commands returns the tree of the benchmarks.
func commands(stdout, stderr io.Writer) *cli.Command {
	root := &cli.Command{
		Name:    "rrdp-proxy-bench",
		Summary: "developer benchmarks of rrdp-proxy",
		About:   rootAbout,
		Version: "devel",
	}
	root.Subs = []*cli.Command{
		bandwidthCommand(stdout, stderr),
		compactBenchCommand(stdout, stderr),
		decodeCommand(stdout),
		httpCommand(stdout, stderr),
		followCommand(stdout, stderr),
		cli.CompletionCommand(root, stdout),
	}
	return root
}

// defaultKeyCache is rrdp-proxy/keys in the user's cache directory (shared
// with rrdp-proxy gen), or nothing when there is none.
func defaultKeyCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "rrdp-proxy", "keys")
}

// commandLine is the command as a report records it: the benchmark's
// name, the flags that were set (in name order) and the arguments.
func commandLine(name string, fs *flag.FlagSet, args []string) string {
	words := []string{"rrdp-proxy-bench", name}
	fs.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && f.Value.String() == "true" {
			words = append(words, "--"+f.Name)
			return
		}
		words = append(words, "--"+f.Name, f.Value.String())
	})
	return strings.Join(append(words, args...), " ")
}
