package diskstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// serials publishes a repository whose snapshot is composite: nParts
// parts of partSize bytes, of which each serial replaces one, plus a whole
// delta file of deltaSize bytes, so that a retained snapshot shares all
// but a few parts with the current one. The files of earlier serials are
// retained, each until its serial's time plus retention.
type serials struct {
	t        testing.TB
	r        *rand.Rand
	repo     string
	parts    [][]byte
	deltas   int
	serial   uint64
	t0       time.Time
	retained []cache.File // in order of serial
}

const (
	nParts    = 8
	partSize  = 4000
	deltaSize = 1500
)

func newSerials(t testing.TB, repo string, seed uint64, t0 time.Time) *serials {
	return newSerialsSized(t, repo, seed, t0, nParts, partSize)
}

// newSerialsSized is newSerials with n parts of size bytes.
func newSerialsSized(t testing.TB, repo string, seed uint64, t0 time.Time, n, size int) *serials {
	p := &serials{t: t, r: rand.New(rand.NewPCG(seed, 1)), repo: repo, t0: t0}
	for range n {
		b, _ := blob(p.r, size)
		p.parts = append(p.parts, b)
	}
	return p
}

// next puts the blobs of the next serial and its head into s, and
// returns the head given (with the earlier serials' files retained).
func (p *serials) next(ctx context.Context, s *Store) *cache.Head {
	p.t.Helper()
	p.serial++
	if p.serial > 1 {
		i := p.serial % uint64(len(p.parts))
		p.parts[i], _ = blob(p.r, len(p.parts[i]))
	}
	put := func(b []byte) [32]byte {
		sum := sha256.Sum256(b)
		if err := s.PutBlob(ctx, sum, b); err != nil {
			p.t.Fatalf("PutBlob: %v", err)
		}
		return sum
	}
	var list []cache.Part
	var whole []byte
	for _, b := range p.parts {
		list = append(list, cache.Part{Sum: put(b), Size: int64(len(b))})
		whole = append(whole, b...)
	}
	idx := put(cache.EncodeParts(list))
	snap := cache.File{Path: fmt.Sprintf("%d/snapshot.xml", p.serial), Sum: sha256.Sum256(whole), Size: int64(len(whole)),
		Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: p.serial, Index: idx}
	d, _ := blob(p.r, deltaSize)
	delta := cache.File{Path: fmt.Sprintf("%d/delta.xml", p.serial), Sum: put(d), Size: deltaSize,
		Format: irpki.FormatXML, Kind: rrdpxml.KindDelta, Serial: p.serial}
	h := &cache.Head{Repo: p.repo, Session: "s", Serial: p.serial, Time: p.t0.Add(time.Duration(p.serial) * time.Minute),
		Files: []cache.File{snap, delta}}
	h.Files = append(h.Files, p.retained...)
	if err := s.PutHead(ctx, p.repo, h); err != nil {
		p.t.Fatalf("PutHead serial %d: %v", p.serial, err)
	}
	until := h.Time.Add(2 * time.Hour)
	snap.Expires, delta.Expires = until, until
	p.retained = append(p.retained, snap, delta)
	return h
}

// checkLoadable checks that every live file of every stored head has all
// its blobs, and returns the serials of the retained files each
// repository's stored head names.
func checkLoadable(t *testing.T, s *Store) map[string][]uint64 {
	t.Helper()
	ctx := context.Background()
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatalf("Heads: %v", err)
	}
	kept := make(map[string][]uint64)
	for repo, h := range heads {
		for i := range h.Files {
			f := &h.Files[i]
			b, err := cache.ReadFile(ctx, f, s.GetBlob)
			if err != nil || sha256.Sum256(b) != f.Sum {
				t.Fatalf("stored head of %s names %s, which cannot be read back whole: %v", repo, f.Path, err)
			}
			if !f.Expires.IsZero() && f.Kind == rrdpxml.KindSnapshot {
				kept[repo] = append(kept[repo], f.Serial)
			}
		}
	}
	return kept
}

// TestCapEvictsOldest: over the cap, the retained files go oldest first,
// across two repositories whose serials interleave in time; the current
// state and the parts retained snapshots share with it stay; the
// directory stays under the cap; the dropped files are Dropped and the
// stored heads no longer name them.
func TestCapEvictsOldest(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	// Room for both current states and about 12 retained serials.
	const max = 2*(nParts*partSize+deltaSize+1000) + 12*(partSize+deltaSize+600)
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	a := newSerials(t, "https://a.example/notification.xml", 1, t0)
	b := newSerials(t, "https://b.example/notification.xml", 2, t0.Add(30*time.Second))
	var heads []*cache.Head
	for range 20 {
		a.next(ctx, s)
		heads = append(heads, b.next(ctx, s))
		if u := s.Used(); u > max {
			t.Fatalf("serial %d: Used %d, over the cap %d", a.serial, u, max)
		}
	}
	st := s.Cap()
	if st.Evictions == 0 || st.EvictedBytes == 0 || st.OverMax || st.Max != max {
		t.Fatalf("Cap: got %+v, want evictions, not over", st)
	}
	// The part lists the store keeps in memory are those of the current
	// files alone: the retained ones, read by every pass, are not kept.
	s.mu.Lock()
	s.pass(0, 0)
	s.mu.Unlock()
	current := make(map[[32]byte]bool)
	for _, h := range s.led.heads {
		for _, f := range h.Files {
			if f.Composite() && f.Expires.IsZero() {
				current[f.Index] = true
			}
		}
	}
	for idx := range s.led.lists {
		if !current[idx] {
			t.Errorf("the ledger keeps the part list %x of a file not current", idx[:8])
		}
	}
	kept := checkLoadable(t, s)
	ka, kb := kept[a.repo], kept[b.repo]
	if len(ka) == 0 || len(kb) == 0 {
		t.Fatalf("retained serials kept: a %v, b %v; want some of each", ka, kb)
	}
	// Oldest first across both: a's serial n (minute n) is older than
	// b's serial n (n and a half), younger than b's n-1. What is kept is
	// a suffix of each, and b's oldest kept is a's or the one before.
	for name, k := range map[string][]uint64{"a": ka, "b": kb} {
		want := make([]uint64, 0, len(k))
		for n := k[0]; n < 20; n++ {
			want = append(want, n)
		}
		if !slices.Equal(k, want) {
			t.Errorf("%s keeps retained serials %v, want the newest ones, %v", name, k, want)
		}
	}
	if kb[0] > ka[0] || kb[0]+1 < ka[0] {
		t.Errorf("oldest kept: a %d, b %d; want b's the same as a's or the one before", ka[0], kb[0])
	}
	for _, f := range heads[len(heads)-1].Files {
		wantDropped := !f.Expires.IsZero() && f.Serial < kb[0]
		if got := s.Dropped(f.Key()); got != wantDropped {
			t.Errorf("Dropped(b's %s): got %v, want %v", f.Path, got, wantDropped)
		}
	}

	// The follower's next head still names the dropped files: stored
	// without them, not refused.
	h := b.next(ctx, s)
	stored, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, m := len(stored[b.repo].Files), len(h.Files); n >= m {
		t.Errorf("head given with %d files stored with %d; want the dropped ones left out", m, n)
	}
	checkLoadable(t, s)
}

// TestCapPassSlack: once the directory is full, a pass frees a margin
// beyond what the blob being written needs, so that the next serials'
// blobs fit without a pass each: a pass every few serials, not several
// a serial, each over the whole retention window. The directory stays
// under the cap throughout.
func TestCapPassSlack(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now().Truncate(time.Second)
	// A serial retains one part, an index and a delta (about 6 KB): the
	// margin of 1/64 of the cap holds about five serials.
	const max = 64 * 5 * (partSize + deltaSize + 600)
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 1, t0)
	full := 0 // serials since the first pass
	for range 400 {
		p.next(ctx, s)
		if u := s.Used(); u > max {
			t.Fatalf("serial %d: Used %d, over the cap %d", p.serial, u, max)
		}
		if s.passes.Load() > 0 {
			full++
		}
	}
	if full < 50 {
		t.Fatalf("the directory was full for %d serials only: the test does not reach its case", full)
	}
	if st := s.Cap(); st.Evictions == 0 || st.OverMax {
		t.Fatalf("Cap: got %+v, want evictions, not over", st)
	}
	if n := s.passes.Load(); n > int64(full/3) {
		t.Errorf("%d passes over %d serials with the directory full; want one every few serials", n, full)
	}
	t.Logf("%d passes over %d serials with the directory full", s.passes.Load(), full)
	checkLoadable(t, s)
}

// TestCapRestart: a restarted store counts what the directory holds as
// the one before it did, and a lower cap applies at Open.
func TestCapRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const max = 1 << 20
	s, err := Open(Config{Dir: dir, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 3, time.Now())
	for range 15 {
		p.next(ctx, s)
	}
	before := s.Cap()
	count := s.Count()
	again, err := Open(Config{Dir: dir, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	after := again.Cap()
	if after.Used != before.Used || after.Current != before.Current || again.Count() != count || after.Used == 0 {
		t.Errorf("reopened: Used %d, Current %d, %d blobs; want %d, %d, %d as before", after.Used, after.Current, again.Count(),
			before.Used, before.Current, count)
	}
	if _, size, err := again.Blobs(); err != nil || size != again.Bytes() {
		t.Errorf("reopened: counted %d bytes of blobs, listed %d (%v)", again.Bytes(), size, err)
	}

	// A cap below what the directory holds: evicted at Open. It holds
	// the head, room to write it again, and a few retained serials.
	lower := before.Current + 2*s.headBytes.Load() + 3*(partSize+deltaSize+600)
	low, err := Open(Config{Dir: dir, MaxBytes: lower})
	if err != nil {
		t.Fatal(err)
	}
	if u := low.Used(); u > lower || low.Cap().Evictions == 0 {
		t.Errorf("opened with a cap of %d under %d: Used %d, %d evictions; want under the cap, evictions", lower, before.Used, u, low.Cap().Evictions)
	}
	kept := checkLoadable(t, low)
	if n := len(kept[p.repo]); n == 0 || n >= 14 {
		t.Errorf("retained serials kept: %v, want a few", kept[p.repo])
	}
	if _, size, err := low.Blobs(); err != nil || size != low.Bytes() {
		t.Errorf("after the eviction at Open: counted %d bytes of blobs, listed %d (%v)", low.Bytes(), size, err)
	}
}

// TestCapBelowCurrent: a cap smaller than the current state keeps all of
// it, drops every retained file, says so, and runs one pass per head, not
// one per blob put.
func TestCapBelowCurrent(t *testing.T) {
	ctx := context.Background()
	const max = nParts * partSize / 2
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 4, time.Now())
	const heads = 6
	for range heads {
		p.next(ctx, s)
	}
	st := s.Cap()
	if !st.OverMax || st.OverMaxCount == 0 || st.Current < nParts*partSize || st.Used <= max {
		t.Errorf("Cap: got %+v, want OverMax with the current state (%d bytes) counted", st, nParts*partSize)
	}
	// 10 blobs a serial: a pass per blob would count about 10 a head.
	if st.OverMaxCount > 2*heads {
		t.Errorf("OverMaxCount %d after %d heads: the cap ran a pass per blob", st.OverMaxCount, heads)
	}
	if kept := checkLoadable(t, s); len(kept[p.repo]) != 0 {
		t.Errorf("retained serials kept over the cap: %v, want none", kept[p.repo])
	}
	// Every blob the current state does not need is gone.
	if u, c := s.Bytes(), s.Cap().Current; u != c {
		t.Errorf("blobs %d bytes, current state %d: want only the current state", u, c)
	}
}
