// Command rrdp-proxy is an RRDP edge for the RPKI: a verifying mirror,
// caching reverse proxy and CDN origin for RPKI repositories (RFC 8182),
// serving each repository both as XML and in the iRPKI protobuf layout.
//
// Each subcommand lives in its own file; commands.go lists them. The
// developer benchmarks are a command of their own, cmd/rrdp-proxy-bench,
// so that this binary links nothing of the test rig or of package testing.
package main

import (
	"io"
	"os"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status: 0, 1 when
// the command failed, 2 for a mistake on the command line.
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Main(commands(stdout, stderr), args, stdout, stderr)
}
