package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"
// (deploy/Dockerfile does, from its VERSION build argument, since the
// image's build context holds no .git); otherwise the module version or
// the VCS revision that go build stamps is reported.
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

func versionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:    "version",
		Summary: "print the version",
		About:   "Print the version of rrdp-proxy, as --version and -V do.",
		Run: func([]string) error {
			_, err := fmt.Fprintf(stdout, "rrdp-proxy %s\n", Version())
			return err
		},
	}
}

// buildDate is the date of the commit the binary was built from
// (YYYY-MM-DD), or nothing when go build recorded none.
func buildDate() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.time" && len(s.Value) >= len("2006-01-02") {
			return s.Value[:len("2006-01-02")]
		}
	}
	return ""
}
