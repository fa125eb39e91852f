package proxy

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPullThrough asks for files the head does not name but the origin's
// notification does (the origin's own snapshot and delta URIs), from many
// clients at once, and for files nobody names.
func TestPullThrough(t *testing.T) {
	for _, mode := range []Mode{ModeReverse, ModeMirror} {
		t.Run(string(mode), func(t *testing.T) { testPullThrough(t, mode) })
	}
}

func testPullThrough(t *testing.T, mode Mode) {
	e := newEnv(t, mode)
	e.advance(3)
	e.sync()
	info := e.repo.Info()
	if err := e.origin.Reset(); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(info.Snapshot.Path, "rrdp/")
	r := e.srv.tab.Load().repos[0]
	hits, misses := r.m.hits.Load(), r.m.misses.Load()

	const clients = 16
	var wg sync.WaitGroup
	sums := make([][32]byte, clients)
	codes := make([]int, clients)
	for i := range clients {
		wg.Go(func() {
			resp, body := e.get("GET", e.path(rel))
			codes[i], sums[i] = resp.StatusCode, sha256.Sum256(body)
		})
	}
	wg.Wait()
	for i := range clients {
		if codes[i] != 200 || sums[i] != info.Snapshot.Hash {
			t.Errorf("client %d: got %d, sum %x; want 200 and %x", i, codes[i], sums[i][:8], info.Snapshot.Hash[:8])
		}
	}
	if n := e.originCountAtLeast("/"+info.Snapshot.Path, 200, 1); n != 1 {
		t.Errorf("origin fetches of the snapshot for %d clients: got %d, want 1", clients, n)
	}
	if n := e.originCountAtLeast("/rrdp/notification.xml", 200, 1); n != 1 {
		t.Errorf("origin notification fetches: got %d, want 1", n)
	}
	if n := r.m.pullFetches.Load(); n != 1 {
		t.Errorf("pull fetches: got %d, want 1", n)
	}
	dh, dm := r.m.hits.Load()-hits, r.m.misses.Load()-misses
	if dh+dm != clients || r.m.pullShared.Load() != dm-1 {
		t.Errorf("hits %d + misses %d, shared waits %d: want %d requests, one fetch, the other misses shared", dh, dm, r.m.pullShared.Load(), clients)
	}

	t.Run("old delta", func(t *testing.T) {
		d := info.Deltas[0]
		resp, body := e.get("GET", e.path(strings.TrimPrefix(d.Path, "rrdp/")))
		if resp.StatusCode != 200 || sha256.Sum256(body) != d.Hash {
			t.Fatalf("delta %d: got %d", d.Serial, resp.StatusCode)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=86400" || resp.Header.Get("ETag") == "" {
			t.Errorf("Cache-Control %q, ETag %q", cc, resp.Header.Get("ETag"))
		}
		resp, _ = e.get("GET", e.path(strings.TrimPrefix(d.Path, "rrdp/")), "If-None-Match", resp.Header.Get("ETag"))
		if resp.StatusCode != 304 {
			t.Errorf("pulled delta with its ETag: got %d, want 304", resp.StatusCode)
		}
	})
	t.Run("hash mismatch", func(t *testing.T) {
		d := info.Deltas[1]
		if err := os.WriteFile(filepath.Join(e.dir, d.Path), []byte("<delta>forged</delta>"), 0o644); err != nil {
			t.Fatal(err)
		}
		resp, body := e.get("GET", e.path(strings.TrimPrefix(d.Path, "rrdp/")))
		if resp.StatusCode != 502 {
			t.Errorf("forged delta: got %d (%.60q), want 502", resp.StatusCode, body)
		}
		if n := r.m.pullErrors.Load(); n == 0 {
			t.Errorf("pull errors: got 0, want the forged delta counted")
		}
	})
	t.Run("not named", func(t *testing.T) {
		for _, p := range []string{
			info.SessionID + "/1/0000000000000000/snapshot.xml",
			"../../etc/passwd",
			"notification.xml.bak",
		} {
			resp, _ := e.get("GET", e.path(p))
			if resp.StatusCode != 404 {
				t.Errorf("%s: got %d, want 404", p, resp.StatusCode)
			}
			if n := e.originCount("/rrdp/"+p, 404) + e.originCount("/rrdp/"+p, 200); n != 0 {
				t.Errorf("%s: the origin was asked %d times, want 0", p, n)
			}
		}
	})
}
