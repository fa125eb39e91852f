package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// keyCache keeps the keys repotest derives, shared by the tests of the
// package; binDir holds the rrdp-proxy binary they build.
var keyCache, binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyCache = filepath.Join(dir, "keys")
	binDir = filepath.Join(dir, "bin")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
