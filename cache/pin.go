package cache

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// pinnedOf returns the blobs of h the cache pins in memory: those of the
// files its notifications name (for a composite file its part list and
// its parts, the list read with get). Files that left the notification
// are never pinned: their blobs live in the evictable part, bounded by
// MaxBytes, and in the lower tiers; a retained snapshot shares most of
// its parts with the current one, which are pinned anyway. Without a
// durable tier (memory only) retention is thus as long as MaxBytes
// allows, not the full two hours: the cost of bounded memory.
func pinnedOf(ctx context.Context, h *Head, get Getter) ([][32]byte, error) {
	cur := *h
	cur.Files = make([]File, 0, len(h.Files))
	for _, f := range h.Files {
		if f.Expires.IsZero() {
			cur.Files = append(cur.Files, f)
		}
	}
	return Needed(ctx, &cur, time.Time{}, get)
}

// PutBlob stores b under sum, after checking that sum is its SHA-256: in
// every lower tier, then in memory, pinned until a head names it or
// PendingGrace passes. The Cache keeps b.
func (c *Cache) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("cache: put blob %x: %w", sum[:8], ErrSum)
	}
	for i, t := range c.tiers {
		if err := t.PutBlob(ctx, sum, b); err != nil {
			return fmt.Errorf("cache: put blob %x in tier %d: %w", sum[:8], i, err)
		}
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pinned[sum]; p != nil {
		p.put = now
		return nil
	}
	c.pinned[sum] = &pin{b: b, put: now}
	c.pendingBlobs++
	c.pendingBytes += int64(len(b))
	c.lru.Del(lruKey(sum))
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
	sums, err := pinnedOf(ctx, h, c.Blob)
	if err != nil {
		return fmt.Errorf("cache: put head of %s: %w", repo, err)
	}
	blobs := make(map[[32]byte][]byte, len(sums))
	for _, sum := range sums {
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
		for i, t := range c.tiers {
			if err := t.PutHead(ctx, repo, h); err != nil {
				return fmt.Errorf("cache: put head of %s in tier %d: %w", repo, i, err)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sum := range sums {
		p := c.pinned[sum]
		if p == nil {
			p = &pin{b: blobs[sum]}
			c.pinned[sum] = p
			c.pinnedBytes += int64(len(p.b))
			c.lru.Del(lruKey(sum))
		} else if p.refs == 0 {
			c.pendingBlobs--
			c.pendingBytes -= int64(len(p.b))
			c.pinnedBytes += int64(len(p.b))
		}
		p.refs++
	}
	if old := c.heads[repo]; old != nil {
		c.unref(old.live)
	}
	c.heads[repo] = &state{head: h, live: sums}
	c.sweepLocked(now)
	return nil
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
			c.pinnedBytes -= int64(len(p.b))
			c.demote(sum, p)
		}
	}
}

// demote moves a blob from the pinned map to the evictable part. c.mu is
// held.
func (c *Cache) demote(sum [32]byte, p *pin) {
	delete(c.pinned, sum)
	c.lru.Set(lruKey(sum), &entry{sum: sum, b: p.b}, int64(len(p.b)))
}

// Sweep unpins the blobs that waited for a head longer than PendingGrace:
// they become evictable.
func (c *Cache) Sweep() {
	now := c.now()
	c.mu.Lock()
	c.sweepLocked(now)
	c.mu.Unlock()
}

func (c *Cache) sweepLocked(now time.Time) {
	for sum, p := range c.pinned {
		if p.refs == 0 && now.Sub(p.put) >= c.grace {
			c.pendingBlobs--
			c.pendingBytes -= int64(len(p.b))
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
