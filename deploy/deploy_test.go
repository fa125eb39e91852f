// Package deploy_test checks the deployment files of rrdp-proxy with the
// real tools that read them: systemd-analyze for the unit, nginx for the
// front configuration (syntax and a live request through it),
// docker-compose for the compose file, PyYAML for the Kubernetes
// manifests, and the Go toolchain for the Dockerfile's static build.
// A missing tool skips its test, or fails it when CI is set.
package deploy_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// need returns the path of tool, skipping the test when it is absent
// (failing under CI, where .ci/run installs it).
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (Debian package %s; CI is set, so this is a failure)", tool, pkg)
	}
	t.Skipf("%s is not installed (Debian package %s)", tool, pkg)
	return ""
}

// run runs a command with a deadline and returns its combined output.
func run(t *testing.T, dir string, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

var (
	buildOnce sync.Once
	buildBin  string
	buildOut  []byte
	buildErr  error
	buildDir  string
)

// buildVersion is the VERSION build argument binary passes, as
// "docker build --build-arg VERSION=..." does.
const buildVersion = "v1.2.3-deploy"

// binary builds cmd/rrdp-proxy once per test run the way deploy/Dockerfile
// does: from a copy of the repository that holds only what
// Dockerfile.dockerignore lets into the build context, with CGO_ENABLED=0,
// -trimpath, -s -w and -X main.version. It returns the binary's path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rrdp-proxy-deploy-")
		if buildErr != nil {
			return
		}
		src := filepath.Join(buildDir, "src")
		if buildErr = copyContext(t, "..", src); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "rrdp-proxy")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		buildOut, buildErr = run(t, src, []string{"CGO_ENABLED=0"}, gobin, "build", "-trimpath", "-ldflags=-s -w -X main.version="+buildVersion, "-o", buildBin, "./cmd/rrdp-proxy")
	})
	if buildErr != nil {
		t.Fatalf("build cmd/rrdp-proxy as deploy/Dockerfile does: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

// copyContext copies the repository at root to dst, leaving out what
// Dockerfile.dockerignore excludes. It understands the patterns that file
// uses: a path relative to the root ("deploy"), and "**/" followed by a
// pattern for a name at any depth ("**/testdata", "**/*_test.go").
func copyContext(t *testing.T, root, dst string) error {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		return err
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			if any, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := filepath.Match(any, filepath.Base(rel)); m {
					return true
				}
			} else if m, _ := filepath.Match(p, rel); m {
				return true
			}
		}
		return false
	}
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// TestStaticBinary checks the Dockerfile's promise: the binary it builds
// runs on a distroless/static base, which has no libc and no loader.
func TestStaticBinary(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0 go build -trimpath", "USER 65532:65532",
		"gcr.io/distroless/static-debian12:nonroot", "./cmd/rrdp-proxy", "ARG VERSION\n", `-X main.version=${VERSION}"`,
		"deploy/examples/container.toml:/etc/rrdp-proxy/rrdp-proxy.toml", "-p 443:8443", "EXPOSE 8080 8443"} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	bin := binary(t)
	// The build context has no .git: the version comes from the build
	// argument alone.
	if out, err := run(t, ".", nil, bin, "--version"); err != nil || string(out) != "rrdp-proxy "+buildVersion+"\n" {
		t.Errorf("rrdp-proxy --version: %q (%v), want %q", out, err, "rrdp-proxy "+buildVersion+"\n")
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary has a program interpreter: it is not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v (%v)", libs, err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// yamlDocs parses every YAML document in each file with PyYAML's safe
// loader, in one python3 run, and returns them by file as decoded JSON.
func yamlDocs(t *testing.T, files ...string) map[string][]any {
	t.Helper()
	py := need(t, "python3", "python3")
	const prog = `import json, sys
import yaml
out = {}
for name in sys.argv[1:]:
    with open(name) as f:
        out[name] = [d for d in yaml.safe_load_all(f) if d is not None]
json.dump(out, sys.stdout)`
	out, err := run(t, ".", nil, py, append([]string{"-c", prog}, files...)...)
	if err != nil && bytes.Contains(out, []byte("No module named 'yaml'")) {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 cannot import yaml (Debian package python3-yaml; CI is set, so this is a failure)")
		}
		t.Skipf("python3 cannot import yaml (Debian package python3-yaml)")
	}
	if err != nil {
		t.Fatalf("parse %v: %v\n%s", files, err, out)
	}
	var docs map[string][]any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatalf("parse %v: %v", files, err)
	}
	return docs
}

// get walks a decoded JSON value along keys (map keys, or list indexes
// written as numbers) and returns what it finds, or nil.
func get(v any, path ...string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

// mustReplace replaces old by new in s and fails when old is absent, so
// that a test's rewrite of a deployment file cannot silently miss.
func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("expected %q in the file", old)
	}
	return strings.ReplaceAll(s, old, new)
}
