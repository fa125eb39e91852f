package rp

import (
	"os"
	"os/exec"
	"testing"
)

// Require skips the test when one of tools is not available, and fails it
// instead when the environment variable CI is set. A tool is an executable
// on PATH, or "root", which stands for an effective user id of 0 (needed
// by RunRPKIClient and by nginx on ports below 1024).
//
// The tools of each runner:
//
//	RunRPKIClient: "root", "unshare", "mount", "rpki-client", and "faketime" with Options.Time
//	RunFORT:       "fort", "openssl", and "faketime" with Options.Time
//	StartFORT:     "fort", "openssl", "faketime"
//	nginx origin:  "nginx"
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if tool == "root" {
			if os.Geteuid() != 0 {
				missing = append(missing, "root")
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
