package cache

import (
	"context"
	"fmt"
)

// A serial that changes most of a big repository encodes most of its
// segments again (about the size of the whole served state), while the old
// ones stay served until the new head is in place: kept in memory as they
// are made, the two copies double the process's peak. With a durable tier
// (the state directory) the new segments need not be in memory before the
// switch: PutCold writes a blob to the tiers and keeps only its size, as a
// cold pin; the head that names it switches without reading it; and the
// blob is read back into memory after the switch, when the old state's
// blobs are no longer pinned (Warm, or the first Blob that asks). So the
// peak holds one state and what a serial encodes at a time.
//
// Between the switch and Warm, a request for a cold blob reads it from the
// tier (one fill, shared by concurrent callers) and pins it there. Without
// a durable tier there is nowhere else to keep a blob, and PutCold declines.

// PutCold stores b under sum in every lower tier, which check it against
// sum, and keeps in memory only that it is there: a cold pin, pending until
// a head names it (PendingGrace), read back by Warm or by the first Blob.
// The caller may reuse b once PutCold returns. It reports false, having
// stored nothing, when no tier keeps blobs durably: the caller then puts b
// with PutBlob.
func (c *Cache) PutCold(ctx context.Context, sum [32]byte, b []byte) (bool, error) {
	if !c.durable {
		return false, nil
	}
	if err := c.putTiers(ctx, sum, b); err != nil {
		return false, err
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pinned[sum]; p != nil {
		p.put, p.stored = now, true
		return true, nil
	}
	p := &pin{size: int64(len(b)), put: now, stored: true}
	if e, ok := c.lru.Get(lruKey(sum)); ok && e.sum == sum {
		p.b = e.b // memory has it already: as PutBlob
		c.lru.Del(lruKey(sum))
	}
	c.pinned[sum] = p
	c.pendingBlobs++
	c.pendingBytes += p.size
	return true, nil
}

// Peek returns the blob whose SHA-256 is sum, as Blob does, but one read
// from a lower tier is not kept in memory: for a copy from one tier to
// another (a fleet node putting cold what it read from Redis).
func (c *Cache) Peek(ctx context.Context, sum [32]byte) ([]byte, error) {
	if b, ok := c.lookup(sum); ok {
		return b, nil
	}
	return c.fromTiers(ctx, sum)
}

// Cold reports whether the cache can keep blobs out of memory until their
// head is in place (PutCold): it has a durable tier.
func (c *Cache) Cold() bool { return c.durable }

// coldOf returns, of sums, the cold pins and their sizes.
func (c *Cache) coldOf(sums [][32]byte) map[[32]byte]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var cold map[[32]byte]int64
	for _, sum := range sums {
		if p := c.pinned[sum]; p != nil && p.b == nil {
			if cold == nil {
				cold = make(map[[32]byte]int64)
			}
			cold[sum] = p.size
		}
	}
	return cold
}

// warmed gives a cold pin of sum the bytes b just read from a tier, and
// reports whether there was one.
func (c *Cache) warmed(sum [32]byte, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pinned[sum]
	if p == nil || p.b != nil {
		return false
	}
	p.b = b
	c.lru.Del(lruKey(sum)) // as PutBlob: pinned, it is not evictable too
	return true
}

// Warm reads into memory the cold blobs of repo's current head, in the
// order the head names them, and returns the bytes it read. A follower
// calls it once its head is in place and the old state's blobs are
// unpinned (see PutCold). It stops at the first blob no tier gives: that
// blob stays cold, read on demand, and the error says which.
func (c *Cache) Warm(ctx context.Context, repo string) (int64, error) {
	c.mu.RLock()
	var cold [][32]byte
	if s := c.heads[repo]; s != nil {
		for _, sum := range s.live {
			if p := c.pinned[sum]; p != nil && p.b == nil {
				cold = append(cold, sum)
			}
		}
	}
	c.mu.RUnlock()
	var n int64
	for _, sum := range cold {
		b, err := c.Blob(ctx, sum)
		if err != nil {
			return n, fmt.Errorf("cache: warm %s: %w", repo, err)
		}
		n += int64(len(b))
	}
	return n, nil
}

// coldBytes returns the bytes of the pinned blobs not in memory. c.mu is
// held.
func (c *Cache) coldBytes() (n int64) {
	for _, p := range c.pinned {
		if p.b == nil {
			n += p.size
		}
	}
	return n
}
