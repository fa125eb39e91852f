package cache

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"slices"
	"time"
)

// pinnedOf returns the blobs of h the cache pins in memory at now, and
// the end of the first retention among the retained files it pins (zero
// if none): those of the files its notifications name (for a composite
// file its part list and its parts, the list read with get), always; and,
// when no tier keeps blobs durably (a state directory; Redis may evict,
// be down or come back empty), the retained files whose retention has not
// ended, newest first, as long as the bytes they add stay within budget
// (what MaxBytes leaves after the other repositories' retained pins):
// memory is then their only sure copy, and retention lasts as long as
// that budget holds the retained files (with fragments, only what
// changed). With a state directory retained files are never pinned: they
// live there and in the evictable part. It also returns the bytes the
// retained files add.
func (c *Cache) pinnedOf(ctx context.Context, h *Head, now time.Time, get Getter, budget int64) ([][32]byte, time.Time, int64, error) {
	cur := *h
	n := 0
	for i := range h.Files {
		if h.Files[i].Expires.IsZero() {
			n++
		}
	}
	cur.Files = make([]File, 0, n) // not len(h.Files): thousands retained
	var retained []File
	for _, f := range h.Files {
		switch {
		case f.Expires.IsZero():
			cur.Files = append(cur.Files, f)
		case !c.durable && f.Live(now):
			retained = append(retained, f)
		}
	}
	sums, err := Needed(ctx, &cur, time.Time{}, get)
	if err != nil || len(retained) == 0 {
		return sums, time.Time{}, 0, err
	}
	seen := make(map[[32]byte]bool, len(sums))
	for _, s := range sums {
		seen[s] = true
	}
	slices.SortStableFunc(retained, func(a, b File) int { return b.Expires.Compare(a.Expires) })
	var extra int64
	var first time.Time
	for i := range retained {
		f := &retained[i]
		blobs, err := fileBlobs(ctx, f, get)
		if err != nil {
			// A retained file whose part list is gone is not pinned; the
			// current files are.
			continue
		}
		var add int64
		var fresh [][32]byte
		for _, b := range blobs {
			if !seen[b.sum] {
				add += b.size
				fresh = append(fresh, b.sum)
			}
		}
		if extra+add > budget {
			break
		}
		extra += add
		for _, s := range fresh {
			seen[s] = true
			sums = append(sums, s)
		}
		if first.IsZero() || f.Expires.Before(first) {
			first = f.Expires
		}
	}
	return sums, first, extra, nil
}

// retainBudget is what MaxBytes leaves for the retained pins of repo
// after those of the other repositories. c.mu is held, for reading at
// least. Two installs at once may both count on the same bytes: the bound
// is then exceeded by at most one repository's share, until the next.
func (c *Cache) retainBudget(repo string) int64 {
	b := c.maxBytes
	for r, s := range c.heads {
		if r != repo {
			b -= s.extra
		}
	}
	return max(b, 0)
}

// sized is a blob and its size.
type sized struct {
	sum  [32]byte
	size int64
}

// fileBlobs returns the blobs of f: its own, or its part list and parts.
func fileBlobs(ctx context.Context, f *File, get Getter) ([]sized, error) {
	if !f.Composite() {
		return []sized{{f.Sum, f.Size}}, nil
	}
	b, err := get(ctx, f.Index)
	if err != nil {
		return nil, err
	}
	parts, err := DecodeParts(b)
	if err != nil {
		return nil, err
	}
	out := make([]sized, 0, len(parts)+1)
	out = append(out, sized{f.Index, int64(len(b))})
	for _, p := range parts {
		if p.Sum != ([32]byte{}) {
			out = append(out, sized{p.Sum, p.Size})
		}
	}
	return out, nil
}

// PutBlob stores b under sum, after checking that sum is its SHA-256: in
// every lower tier, then in memory, pinned until a head names it or
// PendingGrace passes. The Cache keeps b.
func (c *Cache) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("cache: put blob %x: %w", sum[:8], ErrSum)
	}
	if err := c.putTiers(ctx, sum, b); err != nil {
		return err
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pinned[sum]; p != nil {
		p.put, p.stored = now, true
		return nil
	}
	c.pinned[sum] = &pin{b: b, size: int64(len(b)), put: now, stored: true}
	c.pendingBlobs++
	c.pendingBytes += int64(len(b))
	c.lru.Del(lruKey(sum))
	return nil
}

// putTiers puts b in every lower tier, in order.
func (c *Cache) putTiers(ctx context.Context, sum [32]byte, b []byte) error {
	for i, t := range c.tiers {
		if err := t.PutBlob(ctx, sum, b); err != nil {
			return fmt.Errorf("cache: put blob %x in tier %d: %w", sum[:8], i, err)
		}
	}
	return nil
}

// PutHead switches repo to h: in every lower tier, then in memory,
// atomically. It pins the files of h whose retention has not ended and
// unpins those that no head needs any more. It refuses a head naming a blob
// that neither memory nor a tier holds; when a tier fails, memory keeps the
// old head too.
func (c *Cache) PutHead(ctx context.Context, repo string, h *Head) error {
	if h == nil {
		return fmt.Errorf("cache: put head of %s: nil head", repo)
	}
	return c.install(ctx, repo, h, true)
}

// install makes h the head of repo, writing it to the tiers when through.
func (c *Cache) install(ctx context.Context, repo string, h *Head, through bool) error {
	now := c.now()
	c.mu.RLock()
	budget := c.retainBudget(repo)
	c.mu.RUnlock()
	sums, until, extra, err := c.pinnedOf(ctx, h, now, c.Blob, budget)
	if err != nil {
		return fmt.Errorf("cache: put head of %s: %w", repo, err)
	}
	blobs := make(map[[32]byte][]byte, len(sums))
	cold := c.coldOf(sums)
	for _, sum := range sums {
		if _, ok := cold[sum]; ok {
			continue // in a durable tier, read after the switch (Warm)
		}
		b, ok := c.lookup(sum)
		if !ok {
			var err error
			if b, err = c.fill(ctx, sum); err != nil {
				return fmt.Errorf("cache: put head of %s: %w", repo, err)
			}
		}
		blobs[sum] = b
	}
	if through {
		if err := c.putHeadTiers(ctx, repo, h); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sum := range sums {
		p := c.pinned[sum]
		if p == nil {
			b, ok := blobs[sum]
			p = &pin{b: b, size: int64(len(b))}
			if !ok {
				// Cold, and swept meanwhile: still in its tier.
				p.size, p.stored = cold[sum], true
			}
			c.pinned[sum] = p
			c.pinnedBytes += p.size
			c.lru.Del(lruKey(sum))
		} else if p.refs == 0 {
			c.pendingBlobs--
			c.pendingBytes -= p.size
			c.pinnedBytes += p.size
		}
		p.refs++
	}
	old := c.heads[repo]
	if old != nil {
		c.unref(old.live)
	}
	c.heads[repo] = &state{head: h, live: sums, until: until, extra: extra}
	c.releaseRetained(old, h)
	c.sweepLocked(now)
	return nil
}

// putHeadTiers writes h to the tiers in order, but a tier that takes
// repo's heads first (first) before the others.
func (c *Cache) putHeadTiers(ctx context.Context, repo string, h *Head) error {
	lead := -1
	for i, t := range c.tiers {
		if f, ok := t.(first); ok && f.HeadFirst(repo) {
			lead = i
			break
		}
	}
	put := func(i int) error {
		if err := c.tiers[i].PutHead(ctx, repo, h); err != nil {
			return fmt.Errorf("cache: put head of %s in tier %d: %w", repo, i, err)
		}
		return nil
	}
	if lead >= 0 {
		if err := put(lead); err != nil {
			return err
		}
	}
	for i := range c.tiers {
		if i == lead {
			continue
		}
		if err := put(i); err != nil {
			return err
		}
	}
	return nil
}

// releaseRetained makes evictable the pending blobs of the files h names
// as retained from the start (never current: the snapshots of serials a
// delta sync passed), which would otherwise wait PendingGrace pinned for
// a head to name them as current: about 15 minutes of every serial's new
// segments at a serial a second. The ones pinnedOf pins stay. c.mu is
// held.
func (c *Cache) releaseRetained(old *state, h *Head) {
	var known map[[32]byte]bool
	if old != nil {
		known = make(map[[32]byte]bool, len(old.head.Files))
		for _, f := range old.head.Files {
			known[f.Key()] = true
		}
	}
	for i := range h.Files {
		f := &h.Files[i]
		if f.Expires.IsZero() || known[f.Key()] {
			continue
		}
		blobs, err := fileBlobs(context.Background(), f, c.pinnedBlob)
		if err != nil {
			continue
		}
		for _, b := range blobs {
			if p := c.pinned[b.sum]; p != nil && p.refs == 0 {
				c.pendingBlobs--
				c.pendingBytes -= p.size
				c.demote(b.sum, p)
			}
		}
	}
}

// unref drops one reference from each of sums; a blob no head names any
// more becomes evictable. c.mu is held.
func (c *Cache) unref(sums [][32]byte) {
	for _, sum := range sums {
		p := c.pinned[sum]
		if p == nil || p.refs == 0 {
			continue
		}
		if p.refs--; p.refs == 0 {
			c.pinnedBytes -= p.size
			c.demote(sum, p)
		}
	}
}

// demote moves a blob from the pinned map to the evictable part, or, with
// a durable tier that took it (stored), drops it from memory: the tier has it, and a file that
// is asked for again fills the evictable part from there (Blob). Moved
// there unasked, the blobs of a state a serial replaced whole (a quarter
// of a gigabyte of `large` within the default cache.memory) would be live
// while the new state is read back (Warm), and add to the peak. c.mu is
// held.
func (c *Cache) demote(sum [32]byte, p *pin) {
	delete(c.pinned, sum)
	if p.b == nil || c.durable && p.stored {
		return
	}
	c.lru.Set(lruKey(sum), &entry{sum: sum, b: p.b}, p.size)
}

// Sweep unpins the retained files whose retention ended and the blobs
// that waited for a head longer than PendingGrace: they become evictable.
func (c *Cache) Sweep() {
	now := c.now()
	c.mu.Lock()
	c.sweepLocked(now)
	c.mu.Unlock()
}

func (c *Cache) sweepLocked(now time.Time) {
	for repo, s := range c.heads {
		if s.until.IsZero() || now.Before(s.until) {
			continue
		}
		// A pinned retained file's retention ended: pin again. Every
		// blob pinnedOf reads (part lists of pinned files) is pinned.
		keep, until, extra, err := c.pinnedOf(context.Background(), s.head, now, c.pinnedBlob, c.retainBudget(repo))
		if err != nil {
			continue
		}
		kept := make(map[[32]byte]bool, len(keep))
		for _, sum := range keep {
			kept[sum] = true
		}
		var drop, live [][32]byte
		for _, sum := range s.live {
			if kept[sum] {
				live = append(live, sum)
			} else {
				drop = append(drop, sum)
			}
		}
		c.unref(drop)
		s.live, s.until, s.extra = live, until, extra
	}
	for sum, p := range c.pinned {
		if p.refs == 0 && now.Sub(p.put) >= c.grace {
			c.pendingBlobs--
			c.pendingBytes -= p.size
			c.demote(sum, p)
		}
	}
	c.lru.Wait()
}

// Run sweeps every SweepInterval until ctx ends, and returns ctx's error.
func (c *Cache) Run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			c.Sweep()
		}
	}
}

// pinnedBlob is a Getter of the pinned blobs alone, for work done under
// c.mu (which Blob would take again).
func (c *Cache) pinnedBlob(_ context.Context, sum [32]byte) ([]byte, error) {
	if p := c.pinned[sum]; p != nil && p.b != nil {
		return p.b, nil
	}
	return nil, fmt.Errorf("cache: blob %x: %w", sum[:8], fs.ErrNotExist)
}
