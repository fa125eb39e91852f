package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPassthrough: a reverse repository's host serves the origin's other
// files (the TA certificate), fetched once and then from the cache while
// fresh, with validators and 304s; a missing file is a 404 not to be
// cached; a body over the cap is refused; a stale copy is served while
// the origin is down; another host is never fetched from.
func TestPassthrough(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	e := newEnvConfig(t, ModeReverse, tlsNone, func(c *Config) {
		c.Repos[0].Passthrough = true
		c.Repos[0].PassthroughMax = 1 << 10
		c.Repos[0].PassthroughPaths = []string{"/ta/", "/big.bin.txt", "/rrdp/robots.txt"}
		c.Now = clock
	})
	e.sync()
	ta := bytes.Repeat([]byte{0x30, 0x82}, 100)
	if err := os.MkdirAll(filepath.Join(e.dir, "ta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "ta", "ta.cer"), ta, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "big.bin.txt"), make([]byte, 2<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "rrdp", "robots.txt"), []byte("User-agent: *\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	resp, body := e.get("GET", "/ta/ta.cer")
	if resp.StatusCode != 200 || !bytes.Equal(body, ta) {
		t.Fatalf("TA certificate: got %d, %d bytes; want 200 and the origin's %d", resp.StatusCode, len(body), len(ta))
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Last-Modified") == "" || !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public, max-age=") {
		t.Errorf("headers: ETag %q, Last-Modified %q, Cache-Control %q", etag, resp.Header.Get("Last-Modified"), resp.Header.Get("Cache-Control"))
	}
	for range 3 {
		if resp, body := e.get("GET", "/ta/ta.cer"); resp.StatusCode != 200 || !bytes.Equal(body, ta) {
			t.Fatalf("TA certificate again: got %d", resp.StatusCode)
		}
	}
	if n := e.originCount("/ta/ta.cer", 200); n != 1 {
		t.Errorf("origin fetches of the TA certificate for 4 requests while fresh: got %d, want 1", n)
	}
	if resp, _ := e.get("GET", "/ta/ta.cer", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("If-None-Match: got %d, want 304", resp.StatusCode)
	}
	if resp, body := e.get("HEAD", "/ta/ta.cer"); resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(ta)) {
		t.Errorf("HEAD: got %d, %d bytes, length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	// Inside the repository's directory, a path that is not an RRDP file.
	if resp, body := e.get("GET", e.path("robots.txt")); resp.StatusCode != 200 || string(body) != "User-agent: *\n" {
		t.Errorf("robots.txt under the repository: got %d %q", resp.StatusCode, body)
	}

	t.Run("missing", func(t *testing.T) {
		resp, _ := e.get("GET", "/ta/other.cer")
		if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("got %d, Cache-Control %q; want 404, no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	})
	t.Run("over the cap", func(t *testing.T) {
		if resp, _ := e.get("GET", "/big.bin.txt"); resp.StatusCode != 502 {
			t.Errorf("a body over the cap: got %d, want 502", resp.StatusCode)
		}
	})
	t.Run("not passed", func(t *testing.T) {
		for _, p := range []string{
			"/admin/secret.txt",           // not listed: the origin's host may serve more
			"/ta/ta.cer%3Fx=1",            // a query smuggled in
			"/ta/ta.cer%23x",              // a fragment smuggled in
			"/ta/x.xml",                   // an RRDP name
			e.path("notification.xml%3F"), // the origin's notification, unverified
		} {
			if resp, _ := e.get("GET", p); resp.StatusCode != 404 {
				t.Errorf("%s: got %d, want 404", p, resp.StatusCode)
			}
		}
		if n := e.originCount("/admin/secret.txt", 404) + e.originCount("/admin/secret.txt", 200); n != 0 {
			t.Errorf("origin asked for /admin/secret.txt %d times, want never", n)
		}
	})
	t.Run("other host", func(t *testing.T) {
		if resp, _ := e.get("GET", "/ta/ta.cer", "Host", "evil.example"); resp.StatusCode != 404 {
			t.Errorf("other host: got %d, want 404", resp.StatusCode)
		}
		if n := e.originCount("/ta/ta.cer", 200); n != 1 {
			t.Errorf("origin fetches after a request for another host: got %d, want 1", n)
		}
	})
	t.Run("revalidated", func(t *testing.T) {
		now.Add(int64(2 * time.Minute)) // past the 60s default freshness
		if resp, body := e.get("GET", "/ta/ta.cer"); resp.StatusCode != 200 || !bytes.Equal(body, ta) {
			t.Fatalf("got %d", resp.StatusCode)
		}
		if n := e.originCount("/ta/ta.cer", 304); n != 1 {
			t.Errorf("origin revalidations: got %d 304s, want 1", n)
		}
	})
	t.Run("stale if error", func(t *testing.T) {
		now.Add(int64(2 * time.Minute))
		if err := e.origin.Close(); err != nil {
			t.Fatal(err)
		}
		if resp, body := e.get("GET", "/ta/ta.cer"); resp.StatusCode != 200 || !bytes.Equal(body, ta) {
			t.Errorf("origin down, a copy 2 minutes old: got %d, want 200 and the copy", resp.StatusCode)
		}
		if resp, _ := e.get("GET", "/ta/never.cer"); resp.StatusCode != 502 {
			t.Errorf("origin down, no copy: got %d, want 502", resp.StatusCode)
		}
	})
}

// TestPassthroughOff: without Passthrough the host's other files are 404.
func TestPassthroughOff(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	if err := os.WriteFile(filepath.Join(e.dir, "robots.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.get("GET", "/robots.txt"); resp.StatusCode != 404 {
		t.Errorf("got %d, want 404", resp.StatusCode)
	}
	if n := e.originCount("/robots.txt", 200); n != 0 {
		t.Errorf("origin fetches: got %d, want 0", n)
	}
}
