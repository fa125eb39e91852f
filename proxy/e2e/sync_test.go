package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// binary builds cmd/rrdp-proxy once per test binary, into binDir.
var binary = sync.OnceValues(func() (string, error) {
	// The module root is two levels up from this package's source, which
	// is also the working directory of go test.
	dir, err := os.Getwd()
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir, err = filepath.Dir(file), nil
	}
	if err != nil {
		return "", fmt.Errorf("build rrdp-proxy: %w", err)
	}
	root := filepath.Join(dir, "..", "..")
	bin := filepath.Join(binDir, "rrdp-proxy")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goCmd); err != nil {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/rrdp-proxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build rrdp-proxy in %s: %w: %s", root, err, out)
	}
	return bin, nil
})

// run is what one command took.
type run struct {
	wall, cpu time.Duration // cpu: user and system
	maxRSS    int64         // bytes; 0 where unknown
}

func (r run) String() string {
	s := fmt.Sprintf("%v wall, %v cpu", r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
	if r.maxRSS > 0 {
		s += fmt.Sprintf(", %d MiB max RSS", r.maxRSS>>20)
	}
	return s
}

// runSync runs `rrdp-proxy sync --once` from url into out (its state in
// out.state) and returns what it took.
func runSync(t *testing.T, ctx context.Context, pki *rp.PKI, url, out string) run {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "sync", "--once", "--ca-file", pki.CAFile, "--out", out, url)
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rrdp-proxy sync %s: %v\n%s", url, err, b)
	}
	ps := cmd.ProcessState
	return run{wall: time.Since(start), cpu: ps.UserTime() + ps.SystemTime(), maxRSS: maxRSS(ps)}
}

// treeSum is what compareTrees counted.
type treeSum struct {
	files int
	bytes int64
}

// compareTrees reports every difference between the trees a and b (file
// lists, types and bytes), at most ten, and returns what a holds.
func compareTrees(t *testing.T, a, b string) treeSum {
	t.Helper()
	list := func(root string) map[string]fs.FileMode {
		m := map[string]fs.FileMode{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel] = d.Type()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	la, lb := list(a), list(b)
	var diffs []string
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range la {
			if !yield(p) {
				return
			}
		}
		for p := range lb {
			if _, ok := la[p]; !ok && !yield(p) {
				return
			}
		}
	}) {
		if len(diffs) == 10 {
			diffs = append(diffs, "...")
			break
		}
		ma, inA := la[p]
		mb, inB := lb[p]
		switch {
		case !inA:
			diffs = append(diffs, "only in "+b+": "+p)
		case !inB:
			diffs = append(diffs, "only in "+a+": "+p)
		case ma != mb:
			diffs = append(diffs, fmt.Sprintf("%s: type %v and %v", p, ma, mb))
		}
	}
	var sum treeSum
	for p, m := range la {
		if !m.IsRegular() {
			continue
		}
		ba, err := os.ReadFile(filepath.Join(a, p))
		if err != nil {
			t.Fatal(err)
		}
		sum.files++
		sum.bytes += int64(len(ba))
		if _, ok := lb[p]; !ok {
			continue
		}
		bb, err := os.ReadFile(filepath.Join(b, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ba, bb) && len(diffs) < 10 {
			diffs = append(diffs, fmt.Sprintf("%s: %d and %d bytes, different", p, len(ba), len(bb)))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s and %s differ:\n%s", a, b, fmt.Sprint(diffs))
	}
	return sum
}

// syncBoth syncs from the core's notification.xml and notification.bin,
// in that order or, with binFirst, the other, and compares the trees.
func syncBoth(t *testing.T, ctx context.Context, pki *rp.PKI, core *node, dir, what string, binFirst bool) treeSum {
	t.Helper()
	xmlOut, binOut := filepath.Join(dir, "from-xml"), filepath.Join(dir, "from-bin")
	var dx, db run
	if binFirst {
		db = runSync(t, ctx, pki, core.url("notification.bin"), binOut)
		dx = runSync(t, ctx, pki, core.url("notification.xml"), xmlOut)
	} else {
		dx = runSync(t, ctx, pki, core.url("notification.xml"), xmlOut)
		db = runSync(t, ctx, pki, core.url("notification.bin"), binOut)
	}
	start := time.Now()
	sum := compareTrees(t, xmlOut, binOut)
	if !t.Failed() {
		t.Logf("%s: %d files, %d bytes, identical (compared in %v); sync from XML: %v; from .bin: %v", what, sum.files, sum.bytes, time.Since(start).Round(time.Millisecond), dx, db)
	}
	return sum
}

// TestSyncFormats runs `rrdp-proxy sync` from a core's notification.xml
// and from its notification.bin, for the small and paper-1ca profiles:
// the two trees must hold the same files with the same bytes, at the
// first serial, after three serials (the second runs continue from their
// state with deltas only) and, for small, after a session reset.
func TestSyncFormats(t *testing.T) {
	for _, name := range []string{"small", "paper-1ca"} {
		t.Run(name, func(t *testing.T) {
			if name != "small" && testing.Short() {
				t.Skip("a 10,000-ROA repository takes a while")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { origin.Close() })
			prof, err := repotest.LookupProfile(name)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Second)
			start := time.Now()
			repo, err := repotest.Create(dir, repotest.Config{Profile: prof, Seed: 5, BaseURL: origin.URL()}, now, repotest.Options{KeyCache: keyCache})
			if err != nil {
				t.Fatal(err)
			}
			lns, err := rp.Listen(0, 0)
			if err != nil {
				t.Fatal(err)
			}
			// The repository names the origin, not the core: a transparent
			// core's notification.xml would send sync to the origin's
			// files, so the core serves XML of its own, which this test
			// compares with its .bin.
			core := startNode(t, nodeConfig{
				name: "core", follow: origin.URL() + "rrdp/notification.xml",
				public: fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port),
				lns:    lns, pki: pki, regenerate: true,
			})
			out := t.TempDir()
			in := repo.Info()
			core.waitState(in.SessionID, in.Serial, time.Minute)
			t.Logf("repository created and followed in %v", time.Since(start).Round(time.Millisecond))
			sum := syncBoth(t, ctx, pki, core, out, "first serial", false)
			if sum.files < in.Objects {
				t.Errorf("first serial: %d files, want the %d objects and the marker", sum.files, in.Objects)
			}

			start = time.Now()
			for _, n := range []int{1, 2} {
				if err := repo.Advance(now, n); err != nil {
					t.Fatal(err)
				}
				in = repo.Info()
				core.waitState(in.SessionID, in.Serial, time.Minute)
			}
			t.Logf("three serials published and followed in %v", time.Since(start).Round(time.Millisecond))
			before := core.counts()
			syncBoth(t, ctx, pki, core, out, "after three serials", true)
			if d := core.counts().sub(before); d.xmlSnap != 0 || d.binSnap != 0 || d.xmlDelta != 3 || d.binDelta != 3 {
				t.Errorf("after three serials: the syncs fetched %+v from the core, want 3 deltas in each format and no snapshot", d)
			}

			if name != "small" {
				return // the session reset of a large repository adds nothing
			}
			start = time.Now()
			if err := repo.ResetSession(now); err != nil {
				t.Fatal(err)
			}
			in = repo.Info()
			core.waitState(in.SessionID, in.Serial, time.Minute)
			t.Logf("session reset published and followed in %v", time.Since(start).Round(time.Millisecond))
			syncBoth(t, ctx, pki, core, out, "after a session reset", false)
		})
	}
}
