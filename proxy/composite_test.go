package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestServeComposite serves snapshots stored as fragments (FragmentMin
// 1): the whole file, its gzip copy, byte ranges across parts, HEAD and
// conditional requests, and a retained snapshot after two serials. Every
// body is checked against the hash the served notification gives.
func TestServeComposite(t *testing.T) {
	e := newEnv(t, ModeMirror)
	var err error
	e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: e.cache, Base: e.base, FragmentMin: 1})
	if err != nil {
		t.Fatal(err)
	}
	check := func(h *follow.Head, format string) []byte {
		t.Helper()
		f := fileOf(t, h, "snapshot", format)
		if !f.Composite() {
			t.Fatalf("%s snapshot %s is not composite", format, f.Path)
		}
		resp, body := e.get("GET", e.path(f.Path))
		if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != f.Sum || int64(len(body)) != f.Size {
			t.Fatalf("GET %s: %d, %d bytes, hash %x; want 200, %d bytes, %x", f.Path, resp.StatusCode, len(body), sha256.Sum256(body), f.Size, f.Sum)
		}
		resp, gz := e.get("GET", e.path(f.Path), "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("GET %s with gzip: Content-Encoding %q", f.Path, resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(plain, body) {
			t.Fatalf("gzip copy of %s: %d bytes, %v; want the file's %d", f.Path, len(plain), err, len(body))
		}
		n := int64(len(body))
		for _, r := range [][2]int64{{0, 0}, {1, n / 3}, {n / 3, n - 2}, {n - 1, n - 1}, {0, n - 1}} {
			resp, part := e.get("GET", e.path(f.Path), "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[r[0]:r[1]+1]) {
				t.Errorf("range %d-%d of %s: %d, %d bytes; want 206 and bytes %d to %d", r[0], r[1], f.Path, resp.StatusCode, len(part), r[0], r[1])
			}
		}
		resp, head := e.get("HEAD", e.path(f.Path))
		if resp.StatusCode != http.StatusOK || len(head) != 0 || resp.Header.Get("Content-Length") != strconv.FormatInt(n, 10) {
			t.Errorf("HEAD %s: %d, %d body bytes, Content-Length %q; want 200, 0, %d", f.Path, resp.StatusCode, len(head), resp.Header.Get("Content-Length"), n)
		}
		resp, _ = e.get("GET", e.path(f.Path), "If-None-Match", resp.Header.Get("ETag"))
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", f.Path, resp.StatusCode)
		}
		return body
	}
	first := e.sync()
	old := fileOf(t, first, "snapshot", "xml")
	want := check(first, "xml")
	check(first, "bin")
	e.advance(2)
	h := e.sync()
	check(h, "xml")
	check(h, "bin")
	// The first serial's snapshot left the notification and is retained:
	// its parts that changed are no longer pinned, but still served.
	for _, f := range h.Files {
		if f.Path == old.Path && !f.Gzip {
			if f.Expires.IsZero() || f.Kind != rrdpxml.KindSnapshot {
				t.Fatalf("%s: still current after two serials", f.Path)
			}
			resp, body := e.get("GET", e.path(f.Path))
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
				t.Errorf("retained %s: %d, %d bytes; want 200 and its %d bytes", f.Path, resp.StatusCode, len(body), len(want))
			}
			return
		}
	}
	t.Errorf("retained snapshot %s not in the head", old.Path)
}

// TestRetainedEvicted: without a state directory, a retained snapshot
// that cache.memory cannot hold is gone before its retention ends; the
// server answers 404 (no-store) for it, not a 500, and keeps serving the
// current one.
func TestRetainedEvicted(t *testing.T) {
	for _, min := range []int64{0, 1} { // whole and composite snapshots
		t.Run(fmt.Sprintf("FragmentMin %d", min), func(t *testing.T) {
			small, err := cache.New(cache.Config{MaxBytes: 2048})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(small.Close)
			e := newEnvConfig(t, ModeMirror, tlsNone, func(c *Config) { c.Cache = small })
			if e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: small, Base: e.base, FragmentMin: min}); err != nil {
				t.Fatal(err)
			}
			old := fileOf(t, e.sync(), "snapshot", "xml")
			e.advance(1)
			cur := fileOf(t, e.sync(), "snapshot", "xml")
			for _, gz := range []string{"identity", "gzip"} {
				resp, _ := e.get("GET", e.path(old.Path), "Accept-Encoding", gz)
				if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("GET the evicted retained %s (%s): %d, Cache-Control %q; want 404, no-store", old.Path, gz, resp.StatusCode, resp.Header.Get("Cache-Control"))
				}
			}
			resp, body := e.get("GET", e.path(cur.Path))
			if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != cur.Sum {
				t.Errorf("GET the current %s: %d, want 200 with its bytes", cur.Path, resp.StatusCode)
			}
		})
	}
}
