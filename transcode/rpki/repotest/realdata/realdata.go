// Package realdata locates, for tests, the third-party RRDP and RPKI data
// kept beside the repository in ../shared/realdata (see its README). The
// files are read in place and never copied into this repository.
package realdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the realdata directory. When it is absent the test is
// skipped, or failed when the environment variable CI is set: under CI the
// data must be there.
func Dir(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err == nil {
		dir := filepath.Join(root, "..", "shared", "realdata")
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("../shared/realdata is missing (CI is set, so this is a failure)")
	}
	t.Skip("../shared/realdata is missing")
	return ""
}

// Path returns a path inside the realdata directory, with Dir's rules.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}

// moduleRoot walks up from the working directory (a package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
