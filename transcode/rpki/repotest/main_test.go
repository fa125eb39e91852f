package repotest

import (
	"os"
	"testing"
	"time"
)

// keyCache is a key cache shared by the tests of the package, so that each
// key is derived once per run.
var keyCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "repotest-keys-")
	if err != nil {
		panic(err)
	}
	keyCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testNow is the "now" of the tests that do not run relying parties.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newSmall creates a small repository in a fresh directory.
func newSmall(t *testing.T, seed int64, now time.Time, baseURL string) (*Repo, string) {
	t.Helper()
	p, err := LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := Create(dir, Config{Profile: p, Seed: seed, BaseURL: baseURL}, now, Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}
