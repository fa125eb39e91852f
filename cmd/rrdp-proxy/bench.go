package main

import (
	"fmt"
	"io"
	"strings"
)

const benchAbout = `Measure what the iRPKI layout saves, and how fast relying parties decode it.

  bench bandwidth [flags] [REPO_DIR...]
      bytes a new relying party downloads, bytes of a day of deltas and bytes
      on a core->edge link, for XML, XML+gzip, .bin and .bin+gzip; writes
      bandwidth.md and bandwidth.svg into --out.
  bench decode [flags] SNAPSHOT_XML|REPO_DIR
      relying-party decoding speed of one snapshot: snapshot.bin with the
      checking reader, snapshot.xml with rrdpxml and with encoding/xml;
      writes decode.md into --out.
  bench http [flags]
      requests/s, MB/s and latency percentiles of rrdp-proxy against nginx
      serving the same repository, measured with wrk in one run; writes
      docs/bench/http.md (--out).

rrdp-proxy bench SUBCOMMAND --help describes a subcommand.`

// runBench dispatches to the sub-benchmarks.
func runBench(args []string, stdout, stderr io.Writer) error {
	subs := []struct {
		name string
		run  func(args []string, stdout, stderr io.Writer) error
	}{
		{"bandwidth", runBenchBandwidth},
		{"decode", runBenchDecode},
		{"http", runBenchHTTP},
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, "usage: rrdp-proxy bench SUBCOMMAND [flags] [args]\n\n%s\n", benchAbout)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	var names []string
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:], stdout, stderr)
		}
		names = append(names, s.name)
	}
	fmt.Fprintf(stderr, "rrdp-proxy bench: unknown benchmark %q (want %s)\n", args[0], strings.Join(names, " or "))
	return errUsage
}
