package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Config configures a Cache. Every zero field takes the default in its
// comment; the zero Config is a cache in memory only.
type Config struct {
	// MaxBytes is the budget of the evictable part (ristretto), in bytes
	// of blobs (256 MiB). Pinned blobs, the current state of every
	// repository, are never evicted and do not count against it.
	MaxBytes int64
	// Tiers are the lower tiers, nearest first (none). Puts go to every
	// tier, misses fill from the first that holds the blob.
	Tiers []Tier
	// PendingGrace is how long a blob that was put but that no head names
	// yet stays pinned, waiting for its head, before it becomes evictable
	// (15m).
	PendingGrace time.Duration
	// SweepInterval is the time between sweeps in Run (1m).
	SweepInterval time.Duration
	// Now is the clock (time.Now); Logger the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
}

// Cache is the tiered store. It is safe for concurrent use. The byte slices
// it returns and those put into it are shared: nobody may modify them.
type Cache struct {
	tiers    []Tier
	durable  bool  // a tier keeps blobs durably (pinnedOf)
	maxBytes int64 // MaxBytes
	grace    time.Duration
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	lru   *ristretto.Cache[uint64, *entry]
	fills group

	mu     sync.RWMutex
	pinned map[[32]byte]*pin
	heads  map[string]*state
	// pinnedBytes and pendingBytes count the blobs of pinned with refs > 0
	// and refs == 0.
	pinnedBytes, pendingBytes int64
	pendingBlobs              int

	hits, misses, fillCount, shared, fillErrors, sumErrors atomic.Uint64
}

// entry is a blob in the evictable part, keyed by the first 8 bytes of its
// sum; the whole sum tells a colliding blob apart.
type entry struct {
	sum [32]byte
	b   []byte
}

// pin is a blob held in memory: named by refs heads (pinned), or by none
// yet (pending since put).
type pin struct {
	b    []byte // nil while cold (PutCold): in a durable tier only
	size int64
	// stored: every lower tier took it (PutBlob, PutCold), so a durable
	// one has it; a blob read from a tier (Redis) into a head may not be.
	stored bool
	refs   int
	put    time.Time
}

// state is the current head of one repository and the sums it pins.
type state struct {
	head *Head
	live [][32]byte
	// until is the end of the first retention among the retained files
	// pinned (zero: none), when Sweep pins again; extra the bytes they
	// add to the current files (retainBudget).
	until time.Time
	extra int64
}

// New returns a Cache for cfg. It does not read the tiers: Load does.
func New(cfg Config) (*Cache, error) {
	switch {
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("cache: negative MaxBytes %d", cfg.MaxBytes)
	case cfg.PendingGrace < 0:
		return nil, fmt.Errorf("cache: negative PendingGrace %v", cfg.PendingGrace)
	case cfg.SweepInterval < 0:
		return nil, fmt.Errorf("cache: negative SweepInterval %v", cfg.SweepInterval)
	}
	for i, t := range cfg.Tiers {
		if t == nil {
			return nil, fmt.Errorf("cache: tier %d is nil", i)
		}
	}
	c := &Cache{
		tiers:    slices.Clone(cfg.Tiers),
		grace:    cmpOr(cfg.PendingGrace, 15*time.Minute),
		interval: cmpOr(cfg.SweepInterval, time.Minute),
		now:      cfg.Now,
		logger:   cfg.Logger,
		pinned:   make(map[[32]byte]*pin),
		heads:    make(map[string]*state),
	}
	for _, t := range c.tiers {
		if _, ok := t.(durable); ok {
			c.durable = true
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	maxBytes := cmpOr(cfg.MaxBytes, 256<<20)
	c.maxBytes = maxBytes
	// Ten counters per expected item, at 4 KiB per blob, within bounds.
	counters := min(max(10*maxBytes/4096, 1000), 1<<24)
	lru, err := ristretto.NewCache(&ristretto.Config[uint64, *entry]{
		NumCounters: counters,
		MaxCost:     maxBytes,
		BufferItems: 64,
		Metrics:     true,
		// Cost is the bytes of the blob, nothing else.
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: create ristretto cache: %w", err)
	}
	c.lru = lru
	return c, nil
}

func cmpOr[T int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Close releases the evictable part. The Cache must not be used after.
func (c *Cache) Close() { c.lru.Close() }

func lruKey(sum [32]byte) uint64 { return binary.LittleEndian.Uint64(sum[:8]) }

// lookup returns the blob if memory holds it.
func (c *Cache) lookup(sum [32]byte) ([]byte, bool) {
	c.mu.RLock()
	p := c.pinned[sum]
	var b []byte
	if p != nil {
		b = p.b
	}
	c.mu.RUnlock()
	if b != nil {
		return b, true
	}
	if e, ok := c.lru.Get(lruKey(sum)); ok && e.sum == sum {
		if p != nil {
			c.warmed(sum, e.b) // a cold pin takes what memory has
		}
		return e.b, true
	}
	return nil, false
}

// Blob returns the blob whose SHA-256 is sum: from memory, or filled from
// the first lower tier that holds it and checked against sum. Concurrent
// misses for one sum make one fill, run with the first caller's ctx. A blob
// no tier holds is an error wrapping fs.ErrNotExist.
func (c *Cache) Blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if b, ok := c.lookup(sum); ok {
		c.hits.Add(1)
		return b, nil
	}
	c.misses.Add(1)
	return c.fill(ctx, sum)
}

// fill loads sum from the tiers into the evictable part, once however many
// callers ask at the same time.
func (c *Cache) fill(ctx context.Context, sum [32]byte) ([]byte, error) {
	b, err, shared := c.fills.do(sum, func() ([]byte, error) {
		// A fill that ended just before this one began may have it.
		if b, ok := c.lookup(sum); ok {
			return b, nil
		}
		b, err := c.fromTiers(ctx, sum)
		if err != nil {
			c.fillErrors.Add(1)
			return nil, err
		}
		c.fillCount.Add(1)
		if c.warmed(sum, b) {
			return b, nil
		}
		c.lru.Set(lruKey(sum), &entry{sum: sum, b: b}, int64(len(b)))
		c.lru.Wait()
		return b, nil
	})
	if shared {
		c.shared.Add(1)
	}
	return b, err
}

// fromTiers reads sum from the first tier that holds it with the right
// content.
func (c *Cache) fromTiers(ctx context.Context, sum [32]byte) ([]byte, error) {
	var errs []error
	for i, t := range c.tiers {
		b, err := t.GetBlob(ctx, sum)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.logger.Warn("cache: tier read failed", "tier", i, "blob", fmt.Sprintf("%x", sum[:8]), "err", err)
				errs = append(errs, err)
			}
			continue
		}
		if _, checked := t.(checker); !checked && sha256.Sum256(b) != sum {
			c.sumErrors.Add(1)
			err := fmt.Errorf("cache: blob %x from tier %d: %w", sum[:8], i, ErrSum)
			c.logger.Warn("cache: corrupt blob in a tier", "err", err)
			errs = append(errs, err)
			continue
		}
		return b, nil
	}
	return nil, fmt.Errorf("cache: blob %x: %w", sum[:8], errors.Join(append([]error{fs.ErrNotExist}, errs...)...))
}

// Head returns the current head of repo, or nil.
func (c *Cache) Head(repo string) *Head {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s := c.heads[repo]; s != nil {
		return s.head
	}
	return nil
}

// Repos returns the repositories that have a head, sorted.
func (c *Cache) Repos() []string {
	c.mu.RLock()
	repos := make([]string, 0, len(c.heads))
	for r := range c.heads {
		repos = append(repos, r)
	}
	c.mu.RUnlock()
	slices.Sort(repos)
	return repos
}

// Stats counts what a Cache did and holds.
type Stats struct {
	Hits   uint64 // Blob calls answered from memory
	Misses uint64 // Blob calls that needed a fill
	Fills  uint64 // blobs filled from a lower tier
	// Shared counts misses that waited for another caller's fill
	// instead of making their own (deduplicated fills).
	Shared     uint64
	FillErrors uint64 // fills that found the blob in no tier
	SumErrors  uint64 // blobs from a tier that did not match their key
	Repos      int
	// PinnedBlobs and PinnedBytes are the current state of every
	// repository; PendingBlobs and PendingBytes the blobs put and not yet
	// named by a head; CachedBytes the evictable part.
	PinnedBlobs  int
	PinnedBytes  int64
	PendingBlobs int
	PendingBytes int64
	CachedBytes  int64
	// ColdBytes are the bytes of PinnedBytes and PendingBytes that only a
	// durable tier holds yet (PutCold), not read back into memory.
	ColdBytes int64
	// TierBytes are the bytes of blobs held by each lower tier, -1 when
	// the tier cannot tell.
	TierBytes []int64
	// TierCaps are, beside TierBytes, the caps of the tiers that have
	// one (the state directory), zero for the others.
	TierCaps []TierCap
}

// Stats returns the counters. Asking the lower tiers for their size may
// read a directory: call it for metrics, not per request.
func (c *Cache) Stats() Stats {
	st := Stats{
		Hits:       c.hits.Load(),
		Misses:     c.misses.Load(),
		Fills:      c.fillCount.Load(),
		Shared:     c.shared.Load(),
		FillErrors: c.fillErrors.Load(),
		SumErrors:  c.sumErrors.Load(),
	}
	c.mu.RLock()
	st.Repos = len(c.heads)
	st.PinnedBlobs = len(c.pinned) - c.pendingBlobs
	st.PinnedBytes = c.pinnedBytes
	st.PendingBlobs = c.pendingBlobs
	st.PendingBytes = c.pendingBytes
	st.ColdBytes = c.coldBytes()
	c.mu.RUnlock()
	if m := c.lru.Metrics; m != nil {
		st.CachedBytes = int64(m.CostAdded()) - int64(m.CostEvicted())
	}
	for _, t := range c.tiers {
		n := int64(-1)
		if s, ok := t.(sizer); ok {
			n = s.Bytes()
		}
		st.TierBytes = append(st.TierBytes, n)
		var tc TierCap
		if c, ok := t.(capped); ok {
			tc = c.Cap()
		}
		st.TierCaps = append(st.TierCaps, tc)
	}
	return st
}
