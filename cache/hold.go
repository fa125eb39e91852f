package cache

import (
	"context"
	"errors"
	"io/fs"
	"sync"
)

// A composite file is written to a relying party part by part, each part
// read with Blob as the connection takes it (proxy's partsReader): a
// retained snapshot of half a gigabyte to a slow client takes minutes.
// Meanwhile a newer head may stop pinning it in memory, ristretto may
// evict its parts and the state directory may drop it to keep to its cap.
// Once the status line has gone out nothing but a cut connection can say
// so, which a relying party takes for a network fault and retries. So the
// check that a retained file can be served and the promise that it stays
// so until its response ends are one step, Hold, made before the headers;
// the response releases it when its body has been written or dropped.
//
// How each place keeps the promise:
//
//   - memory, without a durable tier: the file's blobs get one more
//     reference, as from a head, so that neither a newer head nor a sweep
//     makes them evictable before the release;
//   - the state directory (diskstore): a read lease on each blob; its cap
//     and GC leave a leased blob where it is, counted against the cap, and
//     remove it at the first pass after the release. The alternatives were
//     an open file descriptor per part, which survives an unlink on Linux
//     but costs one descriptor per part and response (a composite
//     snapshot of `large` has about 2,600 parts), and reading the parts
//     into memory before the headers, which the tier exists to avoid;
//   - the shared tier (Redis), for a file the state directory dropped or
//     never had: every chunk of every blob present, and the blobs' times
//     in its GC set refreshed, in one step (redisstore.Store.Hold), which
//     keeps them from its GC for its grace (1h by default, above the
//     server's WriteTimeout of 30m). Redis's own eviction (maxmemory) is
//     not held off.

// Hold checks that every blob of the retained file f can be read and keeps
// it so until release is called (once; further calls do nothing): from
// memory when f is pinned there and no tier keeps blobs durably, otherwise
// from the first lower tier that holds them all (the state directory, then
// the shared tier for a file the directory dropped). It reports false for
// a file whose retention ended, or that nothing holds whole: the server
// then answers 404, before any header.
func (c *Cache) Hold(ctx context.Context, f *File) (release func(), ok bool) {
	if !f.Live(c.now()) {
		return nil, false
	}
	if !c.durable {
		if release, ok := c.holdPinned(f); ok {
			return release, true
		}
	}
	blobs, err := fileBlobs(ctx, f, c.Blob)
	if err != nil {
		return nil, false
	}
	sums := make([][32]byte, len(blobs))
	for i, b := range blobs {
		sums[i] = b.sum
	}
	for i, t := range c.tiers {
		h, ok := t.(holder)
		if !ok {
			continue
		}
		release, err := h.Hold(ctx, f.Key(), sums)
		if err == nil {
			return once(release), true
		}
		if !errors.Is(err, fs.ErrNotExist) {
			c.logger.Debug("cache: hold a retained file", "tier", i, "path", f.Path, "err", err)
		}
	}
	return nil, false
}

// dropper is a Tier that says whether it dropped a retained file before
// its retention ended (the state directory's cap, diskstore.Store.Dropped).
type dropper interface{ Dropped(key [32]byte) bool }

// Lost reports whether the tiers lost the retained file f for good: there
// is at least one and every one says it dropped f (a state directory
// keeping to its cap, without a shared tier, which may still hold it and
// says nothing of it). Hold then refuses f and the server answers 404.
// The follower leaves such a file out of its next head: carried over to
// the end of its retention, the files of a serial a second cost every head
// (each in memory, and encoded each serial) a few hundred bytes more per
// serial for two hours, for files no node serves any more.
func (c *Cache) Lost(f *File) bool {
	if len(c.tiers) == 0 {
		return false
	}
	key := f.Key()
	for _, t := range c.tiers {
		if d, ok := t.(dropper); !ok || !d.Dropped(key) {
			return false
		}
	}
	return true
}

// holdPinned adds a reference to every blob of f if f is pinned (pinnedOf
// pins a file's blobs all together or none), and returns what drops them.
func (c *Cache) holdPinned(f *File) (func(), bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pinned[f.Key()]; p == nil || p.refs == 0 {
		return nil, false
	}
	blobs, err := fileBlobs(context.Background(), f, c.pinnedBlob)
	if err != nil {
		return nil, false
	}
	sums := make([][32]byte, 0, len(blobs))
	for _, b := range blobs {
		if p := c.pinned[b.sum]; p == nil || p.refs == 0 {
			return nil, false
		}
		sums = append(sums, b.sum)
	}
	for _, sum := range sums {
		c.pinned[sum].refs++
	}
	return once(func() {
		c.mu.Lock()
		c.unref(sums)
		c.mu.Unlock()
	}), true
}

// once returns f made safe to call more than once: it runs the first time.
func once(f func()) func() {
	if f == nil {
		return func() {}
	}
	var o sync.Once
	return func() { o.Do(f) }
}
