package cache_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/irpki/rrdp-proxy/cache"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// The follower publishes into a Cache.
var _ follow.Store = (*cache.Cache)(nil)

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
		Kind: rrdpxml.KindDelta, Serial: 1, Expires: expires}
}

func newCache(t testing.TB, cfg cache.Config) *cache.Cache {
	t.Helper()
	c, err := cache.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newDisk(t testing.TB, dir string) *diskstore.Store {
	t.Helper()
	s, err := diskstore.Open(diskstore.Config{Dir: dir})
	if err != nil {
		t.Fatalf("diskstore.Open: %v", err)
	}
	return s
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  cache.Config
		ok   bool
	}{
		{"zero", cache.Config{}, true},
		{"budget", cache.Config{MaxBytes: 1 << 20}, true},
		{"negative budget", cache.Config{MaxBytes: -1}, false},
		{"negative grace", cache.Config{PendingGrace: -time.Second}, false},
		{"nil tier", cache.Config{Tiers: []cache.Tier{nil}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cache.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: got %v, want ok=%v", err, tt.ok)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestPutAndServe(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, cache.Config{})
	r := rand.New(rand.NewPCG(1, 1))
	b1, s1 := blob(r, 5000)
	_, s2 := blob(r, 10)

	if err := c.PutBlob(ctx, s1, b1[:10]); !errors.Is(err, cache.ErrSum) {
		t.Errorf("PutBlob with a wrong key: got %v, want ErrSum", err)
	}
	if err := c.PutBlob(ctx, s1, b1); err != nil {
		t.Fatal(err)
	}
	if err := c.PutHead(ctx, "r", &cache.Head{Files: []cache.File{file("a", s1, 5000, time.Time{}), file("b", s2, 10, time.Time{})}}); err == nil {
		t.Errorf("PutHead naming a missing blob: got nil error")
	}
	if h := c.Head("r"); h != nil {
		t.Errorf("Head after a refused PutHead: got %+v, want nil", h)
	}
	h := &cache.Head{Serial: 3, Files: []cache.File{file("a", s1, 5000, time.Time{})}}
	if err := c.PutHead(ctx, "r", h); err != nil {
		t.Fatal(err)
	}
	if got := c.Head("r"); got != h {
		t.Errorf("Head: got %+v, want %+v", got, h)
	}
	if got := c.Repos(); len(got) != 1 || got[0] != "r" {
		t.Errorf("Repos: got %q, want [r]", got)
	}
	b, err := c.Blob(ctx, s1)
	if err != nil || string(b) != string(b1) {
		t.Errorf("Blob: got %d bytes, %v; want %d", len(b), err, len(b1))
	}
	if _, err := c.Blob(ctx, s2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Blob(absent): got %v, want fs.ErrNotExist", err)
	}
	st := c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.FillErrors != 2 || st.PinnedBlobs != 1 || st.PinnedBytes != 5000 || st.PendingBlobs != 0 {
		t.Errorf("Stats: got %+v, want 1 hit, 1 miss, 2 fill errors (the refused head, the miss), 1 pinned blob of 5000 bytes", st)
	}
}

// TestPinning checks that the current state survives any pressure on the
// budget, and that files leave the pinned set when no head names them or
// their retention ends.
func TestPinning(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(t, cache.Config{MaxBytes: 64 << 10, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(2, 2))
	const n, size = 20, 32 << 10 // 640 KiB pinned against a 64 KiB budget
	var sums [n][32]byte
	var blobs [n][]byte
	for i := range n {
		blobs[i], sums[i] = blob(r, size)
		if err := c.PutBlob(ctx, sums[i], blobs[i]); err != nil {
			t.Fatal(err)
		}
	}
	head := func(cur []int, retained []int, until time.Time) *cache.Head {
		h := &cache.Head{}
		for _, i := range cur {
			h.Files = append(h.Files, file("c", sums[i], size, time.Time{}))
		}
		for _, i := range retained {
			h.Files = append(h.Files, file("r", sums[i], size, until))
		}
		return h
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	steps := []struct {
		name    string
		head    *cache.Head
		advance time.Duration
		pinned  int
	}{
		{"all current", head(all, nil, time.Time{}), 0, n},
		// Memory only: retained files are pinned within MaxBytes (two
		// of 32 KiB), newest first (pinnedOf).
		{"half retained for 2h", head(all[:10], all[10:], now.Add(2*time.Hour)), 0, 12},
		{"retention not yet over", nil, time.Hour, 12},
		{"retention over", nil, 2 * time.Hour, 10},
		{"new head drops the rest", head(all[:2], nil, time.Time{}), 0, 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now = now.Add(s.advance)
			if s.head != nil {
				if err := c.PutHead(ctx, "r", s.head); err != nil {
					t.Fatal(err)
				}
			}
			c.Sweep()
			st := c.Stats()
			if st.PinnedBlobs != s.pinned || st.PinnedBytes != int64(s.pinned*size) {
				t.Errorf("pinned: got %d blobs, %d bytes; want %d blobs", st.PinnedBlobs, st.PinnedBytes, s.pinned)
			}
			if st.CachedBytes > 64<<10 {
				t.Errorf("evictable part holds %d bytes, over its budget", st.CachedBytes)
			}
			// Every pinned blob is a hit, however small the budget.
			hits := st.Hits
			for i := range s.pinned {
				if _, err := c.Blob(ctx, sums[i]); err != nil {
					t.Errorf("Blob(%d): %v", i, err)
				}
			}
			if got := c.Stats().Hits - hits; got != uint64(s.pinned) {
				t.Errorf("hits on pinned blobs: got %d, want %d", got, s.pinned)
			}
		})
	}
}

func TestPendingGrace(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(t, cache.Config{PendingGrace: time.Minute, Now: func() time.Time { return now }})
	b, sum := blob(rand.New(rand.NewPCG(3, 3)), 100)
	if err := c.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.PendingBlobs != 1 || st.PendingBytes != 100 {
		t.Errorf("after PutBlob: got %+v, want 1 pending blob of 100 bytes", st)
	}
	now = now.Add(time.Minute)
	c.Sweep()
	if st := c.Stats(); st.PendingBlobs != 0 || st.PinnedBlobs != 0 || st.CachedBytes != 100 {
		t.Errorf("after the grace: got %+v, want the blob evictable (100 cached bytes)", st)
	}
}

// gate is a lower tier that holds every read until released, to hold a
// fill open while other callers miss.
type gate struct {
	cache.Tier
	release chan struct{}
	reads   atomic.Int64
}

func (g *gate) GetBlob(ctx context.Context, sum [32]byte) ([]byte, error) {
	g.reads.Add(1)
	<-g.release
	return g.Tier.GetBlob(ctx, sum)
}

func TestSingleFlight(t *testing.T) {
	ctx := context.Background()
	disk := newDisk(t, t.TempDir())
	b, sum := blob(rand.New(rand.NewPCG(4, 4)), 100_000)
	if err := disk.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	g := &gate{Tier: disk, release: make(chan struct{})}
	c := newCache(t, cache.Config{Tiers: []cache.Tier{g}})
	const callers = 16
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			got, err := c.Blob(ctx, sum)
			if err == nil && string(got) != string(b) {
				err = errors.New("wrong bytes")
			}
			errs[i] = err
		})
	}
	// Release the fill once every other caller waits for it.
	for c.Waiters(sum) != callers-1 {
		runtime.Gosched()
	}
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	st := c.Stats()
	if g.reads.Load() != 1 || st.Fills != 1 || st.Shared != callers-1 || st.Misses != callers {
		t.Errorf("got %d tier reads and %+v; want 1 read, 1 fill, %d shared, %d misses", g.reads.Load(), st, callers-1, callers)
	}
	// The filled blob is now a hit.
	if _, err := c.Blob(ctx, sum); err != nil || c.Stats().Hits != 1 {
		t.Errorf("Blob after the fill: %v, %d hits; want 1 hit", err, c.Stats().Hits)
	}
}

// TestCorruptTier checks that a blob read from a lower tier is checked
// against its key: a damaged file on disk is never served, the next tier is
// asked instead.
func TestCorruptTier(t *testing.T) {
	ctx := context.Background()
	dir1, dir2 := t.TempDir(), t.TempDir()
	d1, d2 := newDisk(t, dir1), newDisk(t, dir2)
	b, sum := blob(rand.New(rand.NewPCG(5, 5)), 1000)
	for _, d := range []*diskstore.Store{d1, d2} {
		if err := d.PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir1, "blobs", cache.HexSum(sum))
	bad := append([]byte(nil), b...)
	bad[500] ^= 1
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		tiers []cache.Tier
		ok    bool
	}{
		{"corrupt only", []cache.Tier{d1}, false},
		{"corrupt then good", []cache.Tier{d1, d2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, cache.Config{Tiers: tt.tiers})
			got, err := c.Blob(ctx, sum)
			if tt.ok && (err != nil || string(got) != string(b)) {
				t.Errorf("Blob: got %d bytes, %v; want the good copy", len(got), err)
			}
			if !tt.ok && !errors.Is(err, cache.ErrSum) {
				t.Errorf("Blob: got %v, want ErrSum", err)
			}
			if st := c.Stats(); st.SumErrors != 1 {
				t.Errorf("SumErrors: got %d, want 1", st.SumErrors)
			}
		})
	}
}

// TestRestart publishes through a cache into a real directory, then starts
// a new cache on it: the heads and their blobs are served at once, from
// memory, without any put.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, dir)}, Now: clock})
	r := rand.New(rand.NewPCG(6, 6))
	var sums [4][32]byte
	for i := range sums {
		var b []byte
		b, sums[i] = blob(r, 1000*(i+1))
		if err := c.PutBlob(ctx, sums[i], b); err != nil {
			t.Fatal(err)
		}
	}
	heads := map[string]*cache.Head{
		"a": {Repo: "a", Serial: 1, Time: now, NotificationXML: []byte("<a/>"), Files: []cache.File{
			file("1", sums[0], 1000, time.Time{}), file("2", sums[1], 2000, now.Add(time.Hour))}},
		"b": {Repo: "b", Serial: 9, Time: now, Files: []cache.File{
			file("3", sums[2], 3000, time.Time{}), file("4", sums[3], 4000, now.Add(-time.Hour))}},
	}
	for repo, h := range heads {
		if err := c.PutHead(ctx, repo, h); err != nil {
			t.Fatal(err)
		}
	}

	c2 := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, dir)}, Now: clock})
	if err := c2.Load(ctx); err != nil {
		t.Fatalf("Load: %v", err)
	}
	for repo, want := range heads {
		got := c2.Head(repo)
		if got == nil || got.Serial != want.Serial || string(got.NotificationXML) != string(want.NotificationXML) {
			t.Errorf("head of %s after restart: got %+v, want %+v", repo, got, want)
		}
	}
	// The files the notifications name are pinned; the retained one (2)
	// stays on disk until asked for: a restart does not read the retention
	// window into memory.
	st := c2.Stats()
	if st.Fills != 2 || st.PinnedBlobs != 2 || st.PinnedBytes != 4000 || st.TierBytes[0] != 10000 {
		t.Errorf("after Load: got %+v; want 2 fills, 2 pinned blobs (4000 bytes), 10000 bytes on disk", st)
	}
	for i := range 3 {
		if _, err := c2.Blob(ctx, sums[i]); err != nil {
			t.Errorf("Blob(%d) after restart: %v", i, err)
		}
	}
	if st := c2.Stats(); st.Hits != 2 || st.Misses != 1 {
		t.Errorf("after restart: got %d hits, %d misses; want 2 hits and the retained file from disk", st.Hits, st.Misses)
	}

	// LoadRepos loads the heads of the repositories named, and pins
	// nothing of the others.
	for _, tt := range []struct {
		name  string
		repos []string
		want  []string
	}{{"one", []string{"b"}, []string{"b"}}, {"unknown", []string{"z"}, nil}, {"none", nil, nil}} {
		t.Run("LoadRepos "+tt.name, func(t *testing.T) {
			c3 := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, dir)}, Now: clock})
			if err := c3.LoadRepos(ctx, tt.repos); err != nil {
				t.Fatalf("LoadRepos: %v", err)
			}
			if got := c3.Repos(); !slices.Equal(got, tt.want) {
				t.Errorf("repositories loaded: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHitAllocs(t *testing.T) {
	ctx := context.Background()
	disk := newDisk(t, t.TempDir())
	c := newCache(t, cache.Config{Tiers: []cache.Tier{disk}})
	r := rand.New(rand.NewPCG(7, 7))
	pb, pinned := blob(r, 1000)
	cb, cached := blob(r, 1000)
	for _, x := range []struct {
		b   []byte
		sum [32]byte
	}{{pb, pinned}, {cb, cached}} {
		if err := disk.PutBlob(ctx, x.sum, x.b); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutHead(ctx, "r", &cache.Head{Files: []cache.File{file("p", pinned, 1000, time.Time{})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Blob(ctx, cached); err != nil { // fill it
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		sum  [32]byte
	}{{"pinned", pinned}, {"cached", cached}} {
		t.Run(tt.name, func(t *testing.T) {
			fills := c.Stats().Fills
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := c.Blob(ctx, tt.sum); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("allocations per hit: got %v, want 0", allocs)
			}
			if got := c.Stats().Fills; got != fills {
				t.Errorf("fills during hits: got %d, want %d", got-fills, 0)
			}
		})
	}
}

// TestRetentionNotPinned: a serial a minute for an hour, each with a new
// 256 KiB snapshot retained for two hours. With a state directory memory
// pins the current snapshot only, and every retained snapshot is still
// served (from disk). Without one, memory pins the newest retained
// snapshots within Config.MaxBytes (16 of them) beside the current one.
// Either way the evictable part stays within MaxBytes: memory does not
// grow per serial.
func TestRetentionNotPinned(t *testing.T) {
	ctx := context.Background()
	const size, serials, memory = 256 << 10, 60, 4 << 20
	for _, tt := range []struct {
		name       string
		tiers      bool
		wantPinned int64
	}{{"state directory", true, size}, {"memory only", false, (1 + memory/size) * size}} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			cfg := cache.Config{MaxBytes: memory, Now: func() time.Time { return now }}
			if tt.tiers {
				cfg.Tiers = []cache.Tier{newDisk(t, t.TempDir())}
			}
			c := newCache(t, cfg)
			r := rand.New(rand.NewPCG(7, 7))
			var files []cache.File
			for i := range serials {
				b, sum := blob(r, size)
				if err := c.PutBlob(ctx, sum, b); err != nil {
					t.Fatal(err)
				}
				for j := range files {
					if files[j].Expires.IsZero() {
						files[j].Expires = now.Add(2 * time.Hour)
					}
				}
				files = append(files, file(fmt.Sprintf("%d/snapshot.xml", i), sum, size, time.Time{}))
				h := &cache.Head{Repo: "r", Serial: uint64(i + 1), Time: now, Files: slices.Clone(files)}
				if err := c.PutHead(ctx, "r", h); err != nil {
					t.Fatal(err)
				}
				now = now.Add(time.Minute)
			}
			st := c.Stats()
			if st.PinnedBytes != tt.wantPinned {
				t.Errorf("pinned after %d serials: got %d bytes, want %d", serials, st.PinnedBytes, tt.wantPinned)
			}
			if st.CachedBytes > memory {
				t.Errorf("evictable part: got %d bytes, want at most MaxBytes, %d", st.CachedBytes, memory)
			}
			for i, f := range files {
				if !tt.tiers && i < serials-1-memory/size {
					continue // older than the budget kept
				}
				if b, err := c.Blob(ctx, f.Sum); err != nil || len(b) != size {
					t.Errorf("%s: got %d bytes, %v", f.Path, len(b), err)
				}
			}
		})
	}
}

// TestRetainBudgetGlobal: without a state directory the retained files of
// all repositories together are pinned within MaxBytes, not MaxBytes each.
func TestRetainBudgetGlobal(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const memory, size, repos = 1 << 20, 300 << 10, 5
	c := newCache(t, cache.Config{MaxBytes: memory, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(9, 9))
	for i := range repos {
		repo := fmt.Sprintf("r%d", i)
		var files []cache.File
		for j := range 4 { // the current file and three retained ones
			b, sum := blob(r, size)
			if err := c.PutBlob(ctx, sum, b); err != nil {
				t.Fatal(err)
			}
			exp := now.Add(time.Duration(j) * time.Minute)
			if j == 0 {
				exp = time.Time{}
			}
			files = append(files, file(fmt.Sprintf("%d", j), sum, size, exp.Add(time.Hour)))
			if j == 0 {
				files[0].Expires = time.Time{}
			}
		}
		if err := c.PutHead(ctx, repo, &cache.Head{Repo: repo, Serial: 1, Time: now, Files: files}); err != nil {
			t.Fatal(err)
		}
	}
	c.Sweep()
	st := c.Stats()
	if retained := st.PinnedBytes - repos*size; retained > memory || retained <= 0 {
		t.Errorf("retained bytes pinned over %d repositories: got %d, want some and at most MaxBytes %d", repos, retained, memory)
	}
}

// TestRetainedFromTheStart: blobs put for files a head names only as
// retained (the snapshots of serials a delta sync passed) do not stay
// pinned as pending for PendingGrace: with a state directory they become
// evictable at once and are still served from the disk.
func TestRetainedFromTheStart(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, t.TempDir())}, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(4, 4))
	cur, csum := blob(r, 1000)
	passed, psum := blob(r, 5000)
	for _, b := range [][]byte{cur, passed} {
		if err := c.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
			t.Fatal(err)
		}
	}
	h := &cache.Head{Repo: "r", Serial: 3, Time: now, Files: []cache.File{
		file("3/snapshot.xml", csum, len(cur), time.Time{}),
		file("2/snapshot.xml", psum, len(passed), now.Add(2*time.Hour)),
	}}
	if err := c.PutHead(ctx, "r", h); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.PendingBlobs != 0 || st.PinnedBytes != int64(len(cur)) {
		t.Errorf("got %d pending blobs, %d pinned bytes; want 0 and the current file's %d", st.PendingBlobs, st.PinnedBytes, len(cur))
	}
	if b, err := c.Blob(ctx, psum); err != nil || len(b) != len(passed) {
		t.Errorf("the retained file: %d bytes, %v", len(b), err)
	}
}
