package diskstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// blob returns n seeded pseudo-random bytes and their sum.
func blob(r *rand.Rand, n int) ([]byte, [32]byte) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b, sha256.Sum256(b)
}

func file(path string, sum [32]byte, size int, expires time.Time) cache.File {
	return cache.File{Path: path, Sum: sum, Size: int64(size), Format: irpki.FormatXML,
		Kind: rrdpxml.KindSnapshot, Serial: 7, Expires: expires}
}

func open(t *testing.T, dir string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, Grace: time.Minute, Now: now})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, nil)
	r := rand.New(rand.NewPCG(1, 2))
	b1, s1 := blob(r, 1000)
	b2, s2 := blob(r, 0)
	for _, c := range []struct {
		b   []byte
		sum [32]byte
	}{{b1, s1}, {b2, s2}, {b1, s1}} {
		if err := s.PutBlob(ctx, c.sum, c.b); err != nil {
			t.Fatalf("PutBlob(%x): %v", c.sum[:4], err)
		}
	}
	h := &cache.Head{Repo: "https://rrdp.example.net/notification.xml", Session: "s", Serial: 7,
		Origin: irpki.FormatXML, Time: time.Unix(1700000000, 0).UTC(), NotificationXML: []byte("<n/>"),
		Files: []cache.File{file("a.xml", s1, len(b1), time.Time{}), file("b.xml", s2, 0, time.Time{})}}
	if err := s.PutHead(ctx, "repo-a", h); err != nil {
		t.Fatalf("PutHead: %v", err)
	}
	// The head file, streamed, holds the bytes of json.Marshal of its
	// record, and the ledger counts them.
	want, err := json.Marshal(record{Repo: "repo-a", Head: h})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.headPath("repo-a")); err != nil || string(b) != string(want) {
		t.Errorf("head file: got %q, %v; want %q", b, err, want)
	}
	if n := s.led.headSize["repo-a"]; n != int64(len(want)) {
		t.Errorf("ledger: head of %d bytes, want %d", n, len(want))
	}

	// A second Store on the same directory is what a restart sees.
	s = open(t, dir, nil)
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatalf("Heads: %v", err)
	}
	got := heads["repo-a"]
	if len(heads) != 1 || got == nil {
		t.Fatalf("Heads: got %d heads (%v), want repo-a only", len(heads), heads)
	}
	if got.Serial != 7 || got.Session != "s" || string(got.NotificationXML) != "<n/>" || !got.Time.Equal(h.Time) ||
		len(got.Files) != 2 || got.Files[0] != h.Files[0] {
		t.Errorf("head read back: got %+v, want %+v", got, h)
	}
	for _, c := range []struct {
		name string
		sum  [32]byte
		want []byte
	}{{"a", s1, b1}, {"empty", s2, b2}} {
		t.Run(c.name, func(t *testing.T) {
			b, err := s.GetBlob(ctx, c.sum)
			if err != nil || string(b) != string(c.want) {
				t.Errorf("GetBlob: got %d bytes, %v; want %d bytes", len(b), err, len(c.want))
			}
		})
	}
	if _, err := s.GetBlob(ctx, [32]byte{1}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("GetBlob(absent): got %v, want fs.ErrNotExist", err)
	}
	if _, n, err := s.Blobs(); err != nil || n != 1000 {
		t.Errorf("Blobs: got %d bytes, %v; want 1000", n, err)
	}
}

func TestRefuse(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), nil)
	r := rand.New(rand.NewPCG(3, 4))
	b, sum := blob(r, 100)
	if err := s.PutBlob(ctx, [32]byte{9}, b); err == nil {
		t.Errorf("PutBlob with a wrong key: got nil error")
	}
	past := time.Now().Add(-time.Hour)
	// A retained file whose blob is missing is left out of the stored
	// head (and answered 404: Dropped), not refused.
	tests := []struct {
		name   string
		files  []cache.File
		ok     bool
		stored int // files in the stored head
	}{
		{"missing blob", []cache.File{file("a.xml", sum, 100, time.Time{})}, false, 0},
		{"missing but retained", []cache.File{file("a.xml", sum, 100, time.Now().Add(time.Hour))}, true, 0},
		{"missing but expired", []cache.File{file("a.xml", sum, 100, past)}, true, 1},
		{"no files", nil, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.PutHead(ctx, "r", &cache.Head{Files: tt.files})
			if (err == nil) != tt.ok {
				t.Fatalf("PutHead: got %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			heads, err := s.Heads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(heads["r"].Files); n != tt.stored {
				t.Errorf("stored head: got %d files, want %d", n, tt.stored)
			}
		})
	}
	if !s.Dropped(sum) {
		t.Errorf("Dropped(the missing retained file): got false, want true")
	}
}

func TestOpenRemovesTemps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, nil)
	r := rand.New(rand.NewPCG(5, 6))
	b, sum := blob(r, 10)
	if err := s.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	junk := []string{
		filepath.Join(dir, blobDir, tmpStart+"123"),
		filepath.Join(dir, headDir, tmpStart+"456"),
		filepath.Join(dir, headDir, "notahead"),
		filepath.Join(dir, blobDir, "00zz"),
	}
	for _, p := range junk {
		if err := os.WriteFile(p, []byte("{torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, dir, nil)
	for i, p := range junk {
		_, err := os.Stat(p)
		if gone := errors.Is(err, fs.ErrNotExist); gone != (i < 2) {
			t.Errorf("%s after Open: removed=%v, want %v", p, gone, i < 2)
		}
	}
	if heads, err := s.Heads(ctx); err != nil || len(heads) != 0 {
		t.Errorf("Heads: got %v, %v; want none", heads, err)
	}
	if sums, _, err := s.Blobs(); err != nil || len(sums) != 1 || sums[0] != sum {
		t.Errorf("Blobs: got %x, %v; want one", sums, err)
	}
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	offset := time.Duration(0)
	now := func() time.Time { return time.Now().Add(offset) }
	s := open(t, dir, now)
	r := rand.New(rand.NewPCG(7, 8))
	var bs [5][]byte
	var sums [5][32]byte
	for i := range bs {
		bs[i], sums[i] = blob(r, 100*(i+1))
		if err := s.PutBlob(ctx, sums[i], bs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// 0 current, 1 retained for 2h, 2 expired in 30 min, 3 named by no
	// head, 4 put again later (within grace at GC time).
	h := &cache.Head{Files: []cache.File{
		file("0", sums[0], 100, time.Time{}),
		file("1", sums[1], 200, now().Add(2*time.Hour)),
		file("2", sums[2], 300, now().Add(30*time.Minute)),
	}}
	if err := s.PutHead(ctx, "r", h); err != nil {
		t.Fatal(err)
	}
	offset = time.Hour
	if err := s.PutBlob(ctx, sums[4], bs[4]); err != nil {
		t.Fatal(err)
	}
	st, err := s.GC(ctx)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if st.Removed != 2 || st.Kept != 3 || st.RemovedBytes != 700 {
		t.Errorf("GC: got %+v, want 2 removed (700 bytes), 3 kept", st)
	}
	for i, want := range []bool{true, true, false, false, true} {
		_, err := s.GetBlob(ctx, sums[i])
		if (err == nil) != want {
			t.Errorf("blob %d after GC: got err %v, want present=%v", i, err, want)
		}
	}
	if n, c := s.Bytes(), s.Count(); n != 800 || c != 3 {
		t.Errorf("after GC: Bytes %d, Count %d; want 800 and 3", n, c)
	}
}

// TestBytesCounted: Bytes and Count follow puts (a blob put again counts
// once) and are listed again by Open, without a listing per call.
func TestBytesCounted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir, nil)
	if n, c := s.Bytes(), s.Count(); n != 0 || c != 0 {
		t.Errorf("empty: Bytes %d, Count %d; want 0 and 0", n, c)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{10, 20, 30} {
		b, sum := blob(r, size)
		for range 2 {
			if err := s.PutBlob(ctx, sum, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, c := s.Bytes(), s.Count(); n != 60 || c != 3 {
		t.Errorf("after puts: Bytes %d, Count %d; want 60 and 3", n, c)
	}
	// A blob written behind the store's back is seen at the next Open.
	b, sum := blob(r, 40)
	if err := os.WriteFile(filepath.Join(dir, "blobs", hex.EncodeToString(sum[:])), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := s.Bytes(); n != 60 {
		t.Errorf("Bytes listed the directory: got %d, want the counted 60", n)
	}
	if n, c := open(t, dir, nil).Bytes(), open(t, dir, nil).Count(); n != 100 || c != 4 {
		t.Errorf("reopened: Bytes %d, Count %d; want 100 and 4", n, c)
	}
}

// TestRun: Run collects an unneeded blob by itself and returns when its
// context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var skew atomic.Int64
	s, err := Open(Config{Dir: t.TempDir(), Grace: time.Minute, GCInterval: 10 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	b, sum := blob(rand.New(rand.NewPCG(1, 2)), 100)
	if err := s.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(time.Hour)) // the grace of the put is over
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := s.GetBlob(ctx, sum); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not collect the blob within 20s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: got %v, want context.Canceled", err)
	}
}

// TestBlobsSyncedBeforeHead: the first blobs after a head are synced as
// written; past syncOneByOne (where syncfs exists) they are written
// without a sync and made durable together before the head that names
// them.
func TestBlobsSyncedBeforeHead(t *testing.T) {
	if !canSyncfs {
		t.Skip("no syncfs: each blob is synced as it is written")
	}
	ctx := context.Background()
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	put := func(i int) {
		t.Helper()
		b := []byte("blob " + strconv.Itoa(i))
		if err := s.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range syncOneByOne {
		put(i)
	}
	if s.unsynced.Load() {
		t.Fatalf("after %d blobs: some left unsynced, want each synced as written", syncOneByOne)
	}
	put(syncOneByOne)
	if !s.unsynced.Load() {
		t.Fatal("past syncOneByOne: the blob synced as written, want it left for the head")
	}
	p := newSerials(t, "https://a.example/notification.xml", 3, time.Now())
	p.next(ctx, s)
	if s.unsynced.Load() || s.sinceHead.Load() > int64(len(p.parts)+2) {
		t.Errorf("after the head's put: unsynced %v, %d blobs counted since; want synced, the count restarted", s.unsynced.Load(), s.sinceHead.Load())
	}
}
