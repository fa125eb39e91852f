package e2e_test

import (
	"fmt"
	"os"
	"testing"
)

// keyCache keeps the keys repotest derives, shared by the tests of the
// package.
var keyCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
