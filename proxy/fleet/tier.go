package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// errDown: Redis failed its last call; the tier does not wait for it
// again until a lease call succeeds.
var errDown = errors.New("redis unreachable")

// errNotNext: a compact head that does not continue the one Redis holds
// (the next serial of its session, or a new session); see publishCompact.
var errNotNext = errors.New("not the next serial of the fleet's compact publication")

// tier is the Redis tier of a node's cache. It reads blobs and heads from
// Redis; it writes a head only for a repository whose lease this node
// holds, fenced with the lease's token, after putting again any blob the
// head needs that Redis lost. A head written by the cache for a repository
// the node does not hold (one taken from Redis, or one its own follower
// made while Redis was down) stays local. Blob writes are best effort: a
// head is only written to Redis once all its blobs are there.
type tier struct {
	rs   *redisstore.Store
	log  *slog.Logger
	blob func(context.Context, [32]byte) ([]byte, error) // the cache's Blob

	mu     sync.Mutex
	leases map[string]redisstore.Lease // held repositories
	// installing are the compact heads the fleet is installing from
	// Redis, by key: stored locally, not published again.
	installing map[string]*follow.Head
	// cmu serializes this node's writes of compact heads (publishCompact).
	cmu sync.Mutex

	down                        atomic.Bool
	sumErrors, repaired, writes atomic.Uint64
}

var _ cache.Tier = (*tier)(nil)

func (t *tier) hold(l redisstore.Lease) {
	t.mu.Lock()
	t.leases[l.Repo] = l
	t.mu.Unlock()
}

func (t *tier) drop(repo string) {
	t.mu.Lock()
	delete(t.leases, repo)
	t.mu.Unlock()
}

// install marks h, read from Redis, as the compact head of key that the
// cache is installing (nil: done).
func (t *tier) install(key string, h *follow.Head) {
	t.mu.Lock()
	if h == nil {
		delete(t.installing, key)
	} else {
		t.installing[key] = h
	}
	t.mu.Unlock()
}

func (t *tier) lease(repo string) (redisstore.Lease, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.leases[repo]
	return l, ok
}

// failed records the outcome of a Redis call: an error that is not about
// a value (missing, damaged, lease not held) means Redis is unreachable.
func (t *tier) failed(err error) {
	switch {
	case err == nil:
		t.down.Store(false)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, cache.ErrSum),
		errors.Is(err, redisstore.ErrNotHeld), errors.Is(err, redisstore.ErrMissing), errors.Is(err, redisstore.ErrBadHead),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		t.down.Store(true)
	}
}

func (t *tier) GetBlob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if t.down.Load() {
		return nil, fmt.Errorf("fleet: get blob %x: %w", sum[:8], errDown)
	}
	b, err := t.rs.GetBlob(ctx, sum)
	if errors.Is(err, cache.ErrSum) {
		t.sumErrors.Add(1)
		t.log.Warn("fleet: damaged blob in redis, removed", "blob", fmt.Sprintf("%x", sum[:8]), "err", err)
	}
	t.failed(err)
	return b, err
}

// ChecksSums tells the cache that GetBlob's blobs are checked already, by
// redisstore.Store.GetBlob.
func (*tier) ChecksSums() {}

// PutBlob writes b to Redis unless Redis is down, and never fails: the
// cache keeps the blob, and a head that needs it puts it again.
func (t *tier) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if t.down.Load() {
		return nil
	}
	err := t.rs.PutBlob(ctx, sum, b)
	t.failed(err)
	if err != nil {
		t.log.Warn("fleet: blob not written to redis", "blob", fmt.Sprintf("%x", sum[:8]), "err", err)
	}
	return nil
}

func (t *tier) Heads(ctx context.Context) (map[string]*follow.Head, error) {
	if t.down.Load() {
		return nil, fmt.Errorf("fleet: list heads: %w", errDown)
	}
	h, err := t.rs.Heads(ctx)
	t.failed(err)
	return h, err
}

// PutHead writes h to Redis if this node holds repo's lease, fenced. A
// deposed holder gets an error wrapping redisstore.ErrNotHeld, and the
// cache keeps its old head. When Redis is unreachable the head stays local
// (nil error): the node serves it, and writes it to Redis once it holds
// the lease again.
//
// A repository's compact publication (cache.CompactKey) is stricter: it
// goes to Redis or nowhere. Its serials are this node's count, not the
// origin's, so a copy kept local would give another node's relying
// parties other bytes under the same session and serial; without the
// lease, or with Redis down, PutHead fails and the cache keeps the head
// the fleet published (see Config.Compact). The cache writes such a head
// here before its other tiers (HeadFirst), so that the state directory
// never keeps one the fleet refused. And it must continue Redis's
// (publishCompact): a validator run that began before the lease went
// away and came back cannot write an older serial over the fleet's.
func (t *tier) PutHead(ctx context.Context, repo string, h *follow.Head) error {
	if base, ok := cache.CompactOf(repo); ok {
		t.mu.Lock()
		from := t.installing[repo] == h
		t.mu.Unlock()
		if from {
			return nil // Redis's own
		}
		if _, held := t.lease(base); !held {
			return fmt.Errorf("fleet: publish the compact head of %s: %w", base, redisstore.ErrNotHeld)
		}
		if t.down.Load() {
			return fmt.Errorf("fleet: publish the compact head of %s: %w", base, errDown)
		}
		return t.publishCompact(ctx, repo, h, false)
	}
	if _, held := t.lease(repo); !held || t.down.Load() {
		return nil
	}
	err := t.publish(ctx, repo, h)
	if err != nil && !errors.Is(err, redisstore.ErrNotHeld) && !errors.Is(err, redisstore.ErrMissing) &&
		ctx.Err() == nil {
		t.log.Warn("fleet: head not written to redis, kept local", "repo", repo, "serial", h.Serial, "err", err)
		return nil
	}
	return err
}

// HeadFirst tells the cache to write the compact heads here before its
// other tiers (cache.first): a head Redis refuses is kept nowhere.
func (*tier) HeadFirst(key string) bool {
	_, ok := cache.CompactOf(key)
	return ok
}

// publishCompact writes h, a compact head of key, to Redis if it
// continues the head Redis holds: the next serial of the same session, or
// another session (a publisher that could not continue the stored one
// starts a new session). With restore, h is this node's copy of the
// fleet's head, written only when Redis has none (it came back empty) or
// one it cannot read. Only the lease holder writes (the fence), and this
// node's writes take turns, so nothing is written between the read of
// Redis's head and the write.
func (t *tier) publishCompact(ctx context.Context, key string, h *follow.Head, restore bool) error {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	cur, err := t.rs.Head(ctx, key)
	t.failed(err)
	if errors.Is(err, redisstore.ErrBadHead) {
		cur, err = nil, nil // written over
	}
	if err != nil {
		return fmt.Errorf("fleet: publish compact serial %d of %s: %w", h.Serial, key, err)
	}
	if cur != nil && (restore || !(h.Session != cur.Session || h.Serial == cur.Serial+1)) {
		return fmt.Errorf("fleet: publish compact serial %d of session %s over serial %d of session %s: %w",
			h.Serial, h.Session, cur.Serial, cur.Session, errNotNext)
	}
	return t.publish(ctx, key, h)
}

// publish writes h, the head of key, to Redis with the token this node
// holds for the repository of key (key itself, or the repository whose
// compact publication key is), after putting again the blobs h needs that
// Redis does not hold.
func (t *tier) publish(ctx context.Context, key string, h *follow.Head) error {
	repo, companion := cache.CompactOf(key)
	if !companion {
		repo = key
	}
	l, held := t.lease(repo)
	if !held {
		return fmt.Errorf("fleet: publish head of %s: %w", key, redisstore.ErrNotHeld)
	}
	if err := t.repair(ctx, h); err != nil {
		return err
	}
	var err error
	if companion {
		err = t.rs.PutCompanionFenced(ctx, l, key, h)
	} else {
		err = t.rs.PutHeadFenced(ctx, l, h)
	}
	t.failed(err)
	if err == nil {
		t.writes.Add(1)
	}
	return err
}

// repair puts again, from the cache, the blobs h needs that Redis lost.
// A lost part list hides its parts until it is back: a few rounds.
func (t *tier) repair(ctx context.Context, h *follow.Head) error {
	for range 3 {
		missing, err := t.rs.Missing(ctx, h)
		t.failed(err)
		if err != nil || len(missing) == 0 {
			return err
		}
		if err := t.repairBlobs(ctx, h, missing); err != nil {
			return err
		}
	}
	return nil
}

// repairBlobs puts missing, from the cache, into Redis.
func (t *tier) repairBlobs(ctx context.Context, h *follow.Head, missing [][32]byte) error {
	for _, sum := range missing {
		b, err := t.blob(ctx, sum)
		if err != nil {
			return fmt.Errorf("fleet: repair blob %x of %s: %w", sum[:8], h.Repo, err)
		}
		err = t.rs.PutBlob(ctx, sum, b)
		t.failed(err)
		if err != nil {
			return fmt.Errorf("fleet: repair blob %x of %s: %w", sum[:8], h.Repo, err)
		}
		t.repaired.Add(1)
		t.log.Info("fleet: put a blob redis lost again", "repo", h.Repo, "blob", fmt.Sprintf("%x", sum[:8]))
	}
	return nil
}
