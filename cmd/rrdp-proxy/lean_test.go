package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// forbidden are the packages the shipped binary must not link: the
// standard test framework and the test rig that runs relying parties and
// nginx. The developer benchmarks that need them are cmd/rrdp-proxy-bench.
var forbidden = []string{
	"testing",
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp",
}

// TestLeanDeps lists the packages the binary is built from.
func TestLeanDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := map[string]bool{}
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		deps[sc.Text()] = true
	}
	if !deps["github.com/irpki/rrdp-proxy/cmd/rrdp-proxy"] || !deps["github.com/irpki/rrdp-proxy/proxy"] {
		t.Fatalf("go list -deps printed no package of the module:\n%s", out)
	}
	for _, p := range forbidden {
		if deps[p] {
			t.Errorf("rrdp-proxy links %s; why: go list -deps -f '{{.ImportPath}}: {{.Imports}}' . | grep %s", p, p)
		}
	}
	for d := range deps {
		if strings.HasPrefix(d, "testing/") || strings.HasSuffix(d, "test") && strings.HasPrefix(d, "github.com/irpki/rrdp-proxy/") && !strings.HasSuffix(d, "/repotest") {
			t.Errorf("rrdp-proxy links the test package %s", d)
		}
	}
}

// TestBuiltBinary builds the binary as deploy/Dockerfile does, with the
// version passed in through -ldflags -X, and checks what it reports and
// that no symbol of package testing is in it.
func TestBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "rrdp-proxy")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"--version"}, {"-V"}, {"version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != "rrdp-proxy v9.9.9-test\n" {
			t.Errorf("rrdp-proxy %s: %q (%v), want %q", args[0], out, err, "rrdp-proxy v9.9.9-test\n")
		}
	}
	nm, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	if !bytes.Contains(nm, []byte(" main.main")) {
		t.Fatalf("go tool nm lists no main.main: the check below would prove nothing")
	}
	for sc := bufio.NewScanner(bytes.NewReader(nm)); sc.Scan(); {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && strings.HasPrefix(f[len(f)-1], "testing.") {
			t.Errorf("the binary holds %s", f[len(f)-1])
			break
		}
	}
}
