package rp

import (
	"os"
	"os/exec"
)

// TB is the part of testing.TB that Require uses. Declaring it here keeps
// package testing out of the binaries that link this package (the
// benchmark command does).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Require skips the test when one of tools is not available, and fails it
// instead when the environment variable CI is set. A tool is an executable
// on PATH, "faketime", which stands for libfaketime (the harness preloads
// it without the faketime wrapper), or "root", which stands for an
// effective user id of 0 (needed by RunRPKIClient).
//
// The tools of each runner:
//
//	RunRPKIClient: "root", "unshare", "mount", "rpki-client", and "faketime" with Options.Time
//	RunFORT:       "fort", "openssl", and "faketime" with Options.Time
//	StartFORT:     "fort", "openssl", "faketime"
//	nginx origin:  "nginx"
func Require(t TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		switch tool {
		case "root":
			if os.Geteuid() != 0 {
				missing = append(missing, "root")
			}
			continue
		case "faketime":
			if _, err := libfaketime(); err != nil {
				missing = append(missing, "faketime (libfaketime.so.1)")
			}
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("missing %v, required when CI is set", missing)
	}
	t.Skipf("missing %v", missing)
}
