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

// first is a Tier that must take some heads before the other tiers see
// them (the fleet's Redis tier for a compact publication, whose serials
// are the fleet's once Redis took them and nobody's otherwise): for a key
// it reports, the cache writes it first, and a head it refuses reaches
// no other tier, so that a state directory never keeps, and serves after
// a restart, a head its fleet did not publish.
type first interface{ HeadFirst(key string) bool }

// sizer is a Tier that can tell how many bytes of blobs it holds.
type sizer interface{ Bytes() int64 }

// TierCap says how a tier with a byte cap (the state directory's
// cache.disk) keeps to it. The current state of every repository is never
// evicted: when it alone does not fit, the tier holds more than Max and
// says so (OverMax).
type TierCap struct {
	// Max is the cap; Used the bytes it is compared with (blobs and
	// heads); Current the bytes of the current state of every repository
	// (what the notifications name, never evicted).
	Max, Used, Current int64
	// Evictions counts the retained files dropped to keep to the cap,
	// oldest first; EvictedBytes the bytes of blobs they freed.
	Evictions, EvictedBytes uint64
	// OverMax is set while the current state (with the blobs of a publish
	// in progress) alone exceeds Max; OverMaxCount counts the times it
	// was found so.
	OverMax      bool
	OverMaxCount uint64
	// Held is the bytes of blobs held for responses of files the tier
	// dropped or would drop (Cache.Hold): they stay, counted in Used,
	// until the responses end.
	Held int64
}

// capped is a Tier with a byte cap.
type capped interface{ Cap() TierCap }

// holder is a Tier that can promise to keep a file readable for the
// length of a response (Cache.Hold): until release is called, every blob
// of sums stays readable through GetBlob. key is the file's Key, by which
// the state directory knows the retained files it dropped to keep to its
// cap. Hold fails with an error wrapping fs.ErrNotExist when the tier
// does not hold every blob of sums (or dropped the file); release may be
// called more than once.
type holder interface {
	Hold(ctx context.Context, key [32]byte, sums [][32]byte) (release func(), err error)
}
