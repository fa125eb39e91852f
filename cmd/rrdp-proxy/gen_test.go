package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

func TestGen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	keys := t.TempDir()
	common := []string{"--out", dir, "--key-cache", keys, "--now", "2025-03-01T12:00:00Z", "--quiet"}
	gen := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append(append([]string{"gen"}, common...), args...)...)
	}
	code, out, errOut := gen("--base-url", "https://localhost:8443/", "--seed", "3")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "profile small, seed 3") || !strings.Contains(out, "serial 1:") {
		t.Errorf("create: got %q", out)
	}
	for _, f := range []string{repotest.TALPath, repotest.TACertPath, repotest.VRPPath, repotest.NotificationPath} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("create: %v", err)
		}
	}
	tal, err := os.ReadFile(filepath.Join(dir, repotest.TALPath))
	if err != nil || !strings.HasPrefix(string(tal), "https://localhost:8443/ta.cer\n") {
		t.Errorf("TAL: got %q (%v)", tal, err)
	}
	vrps, err := os.ReadFile(filepath.Join(dir, repotest.VRPPath))
	if err != nil || !strings.HasPrefix(string(vrps), "ASN,IP Prefix,Max Length\nAS") {
		t.Errorf("%s: got %.60q (%v)", repotest.VRPPath, vrps, err)
	}

	steps := []struct {
		name string
		args []string
		want string
	}{
		{"advance", []string{"--advance", "2"}, "serial 3:"},
		{"reset", []string{"--reset-session"}, "serial 1:"},
		{"reset and advance", []string{"--reset-session", "--advance", "2", "--base-url", "https://localhost:8443/"}, "serial 3:"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errOut := gen(s.args...)
			if code != 0 || !strings.Contains(out, s.want) {
				t.Errorf("got exit %d, %q, %s; want exit 0 and %q", code, out, errOut, s.want)
			}
		})
	}

	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"no out", []string{"gen", "--base-url", "https://localhost/"}, 2},
		{"no base URL", []string{"gen", "--out", t.TempDir()}, 2},
		{"unknown profile", []string{"gen", "--out", t.TempDir(), "--base-url", "https://localhost/", "--profile", "huge"}, 2},
		{"profile with advance", []string{"gen", "--out", dir, "--advance", "1", "--profile", "large"}, 2},
		{"split with advance", []string{"gen", "--out", dir, "--advance", "1", "--split", "https://localhost:8444/"}, 2},
		{"split at the base URL", []string{"gen", "--out", t.TempDir(), "--base-url", "https://localhost/", "--split", "https://localhost/"}, 1},
		{"other base URL", []string{"gen", "--out", dir, "--advance", "1", "--base-url", "https://other/"}, 1},
		{"create over a repository", []string{"gen", "--out", dir, "--base-url", "https://localhost:8443/"}, 1},
		{"advance nothing", []string{"gen", "--out", t.TempDir(), "--advance", "1"}, 1},
		{"bad now", []string{"gen", "--out", t.TempDir(), "--base-url", "https://localhost/", "--now", "yesterday"}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, _, errOut := runCLI(t, append(c.args, "--key-cache", keys)...); code != c.code {
				t.Errorf("got exit %d, want %d: %s", code, c.code, errOut)
			}
		})
	}
}

// TestGenSplit creates a tree split over two repositories and advances
// it: both notifications are written, and the summary names both.
func TestGenSplit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	common := []string{"gen", "--out", dir, "--key-cache", t.TempDir(), "--now", "2025-03-01T12:00:00Z", "--quiet"}
	for _, args := range [][]string{
		{"--base-url", "https://localhost:8443/", "--split", "https://localhost:8444/"},
		{"--advance", "1"},
	} {
		code, out, errOut := runCLI(t, append(common, args...)...)
		if code != 0 {
			t.Fatalf("gen %v: exit %d: %s", args, code, errOut)
		}
		if !strings.Contains(out, "second repository at https://localhost:8444/") {
			t.Errorf("gen %v: got %q", args, out)
		}
	}
	for _, f := range []string{repotest.NotificationPath, filepath.Join(repotest.SplitDir, repotest.NotificationPath)} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `serial="2"`) {
			t.Errorf("%s: not at serial 2:\n%s", f, b)
		}
	}
}
