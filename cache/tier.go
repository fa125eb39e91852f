package cache

import (
	"context"
)

// Tier is a lower tier of the cache: the disk (diskstore.Store) or a shared
// store. GetBlob reports a missing blob with an error wrapping fs.ErrNotExist;
// the cache checks every blob it reads against its key, so a Tier need not
// (one that does says so with ChecksSums, and is not checked twice).
// PutHead must be atomic; Heads returns every head, keyed by repository.
type Tier interface {
	GetBlob(ctx context.Context, sum [32]byte) ([]byte, error)
	PutBlob(ctx context.Context, sum [32]byte, b []byte) error
	Heads(ctx context.Context) (map[string]*Head, error)
	PutHead(ctx context.Context, repo string, h *Head) error
}

// checker is a Tier whose GetBlob checks every blob against its key
// itself, failing with an error wrapping ErrSum: the cache does not hash
// what it returns a second time.
type checker interface{ ChecksSums() }

// durable is a Tier that keeps what it was given until told to drop it
// (the state directory), unlike Redis, which may evict, be down or come
// back empty: with one, files that left the notification need not stay
// pinned in memory (pinnedOf).
type durable interface{ Durable() }

// sizer is a Tier that can tell how many bytes of blobs it holds.
type sizer interface{ Bytes() int64 }
