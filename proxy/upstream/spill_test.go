package upstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestSpill: a body up to the threshold stays in memory; a larger one goes
// to a temporary file while it is read, costs about the threshold in
// memory, comes back byte for byte and leaves no file; a decompression
// bomb is cut at the cap with bounded memory and leaves no file.
func TestSpill(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zeros := make([]byte, 1<<20)
	for range 256 { // 256 MiB of zeros, a few hundred KB on the wire
		zw.Write(zeros)
	}
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Write([]byte("small body"))
		case "/mid":
			w.Write(big[:300<<10])
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			w.Write(big)
		case "/bomb":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
		}
	}))
	defer srv.Close()
	c, err := New(Config{MaxSnapshotSize: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	fetch := func(path string) *Response {
		t.Helper()
		resp, err := c.Fetch(context.Background(), Request{URL: srv.URL + path, Kind: rrdpxml.KindSnapshot})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	empty := func() {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("spill directory: %d files left, want none", len(ents))
		}
	}
	allocated := func(fn func()) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		fn()
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}

	t.Run("small", func(t *testing.T) {
		sp, err := fetch("/small").Spill(dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, err := sp.Bytes()
		if err != nil || string(b) != "small body" || sp.OnDisk() || sp.Sum() != sha256.Sum256(b) {
			t.Errorf("got %q, %v, on disk %v", b, err, sp.OnDisk())
		}
		empty()
	})
	// A body kept in memory gets a slice of about its size, not the
	// buffer it grew in: a delta's XML is kept as its blob while
	// notifications name it, counted by its length.
	t.Run("exact", func(t *testing.T) {
		for _, path := range []string{"/small", "/mid"} {
			sp, err := fetch(path).Spill(dir, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sp.Bytes()
			if err != nil || sp.OnDisk() {
				t.Fatalf("%s: %v, on disk %v", path, err, sp.OnDisk())
			}
			if slack := cap(b) - len(b); slack > max(len(b)/8, 64) {
				t.Errorf("%s: %d bytes kept in a buffer of %d", path, len(b), cap(b))
			}
		}
	})
	t.Run("big", func(t *testing.T) {
		resp := fetch("/big")
		var sp *Spill
		n := allocated(func() {
			if sp, err = resp.Spill(dir, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		if !sp.OnDisk() || sp.Size() != int64(len(big)) || sp.Sum() != sha256.Sum256(big) {
			t.Fatalf("on disk %v, size %d, want %d bytes on disk with their hash", sp.OnDisk(), sp.Size(), len(big))
		}
		empty() // on disk, yet without a name: a crash leaves nothing
		t.Logf("a 64 MiB body, threshold 1 MiB: %d bytes allocated while read", n)
		var whole uint64
		resp2 := fetch("/big")
		whole = allocated(func() { resp2.ReadAll() })
		t.Logf("the same body with ReadAll (the code before): %d bytes allocated", whole)
		if n > 8<<20 {
			t.Errorf("reading a 64 MiB body with a 1 MiB threshold allocated %d bytes, want at most 8 MiB", n)
		}
		b, err := sp.Bytes()
		if err != nil || !bytes.Equal(b, big) {
			t.Errorf("back from disk: %d bytes, %v", len(b), err)
		}
		empty()
	})
	t.Run("bad body dropped", func(t *testing.T) {
		sp, err := fetch("/big").Spill(dir, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		sp.Close() // a hash that did not match: never loaded
		empty()
	})
	t.Run("bomb", func(t *testing.T) {
		resp := fetch("/bomb")
		var err error
		n := allocated(func() { _, err = resp.Spill(dir, 1<<20) })
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("a 256 MiB bomb with a 128 MiB cap: got %v, want ErrTooLarge", err)
		}
		t.Logf("a 256 MiB gzip bomb, cap 128 MiB: %d bytes allocated", n)
		if n > 16<<20 {
			t.Errorf("the bomb allocated %d bytes, want at most 16 MiB", n)
		}
		empty()
	})
}
