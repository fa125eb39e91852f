package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or the VCS revision is reported.
var version = ""

// Version returns the version string used in the User-Agent and output.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", "Print the version of rrdp-proxy.", stderr)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "rrdp-proxy %s\n", Version())
	return err
}
