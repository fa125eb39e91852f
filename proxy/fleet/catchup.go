package fleet

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// minCatchup is the least time between two polls of the origin that
// requests for files this node lacks start: a flood of made-up names
// costs at most one conditional GET of the notification a second.
const minCatchup = time.Second

// Catchup finds a head of repository repo that names path, a file the
// node's own head does not name: behind a load balancer, a relying party
// may read the notification from a node that has the newer serial and its
// files from one that has not installed it yet. Catchup looks, in order:
//
//   - in the shared tier: Redis's head, whose blobs the holder stored
//     before the head (the server reads them through the cache's tiers);
//     the node is told to install it;
//   - at the origin: with Redis unreachable every node polls alone, so
//     the node's own follower polls now (one poll at a time per
//     repository, at most one a second), and its new head is returned if
//     it names path.
//
// It returns nil, and no error, when neither has path: the file is not
// one of the repository's (the server answers 404), or the origin has
// not published it. Only names of the follower's layout for a later
// serial or another session than the node's head are looked for
// (irpki.FilePath); others return nil at once.
//
// The node's own head comes first: the caller looked at it before the
// call, and the node may have installed a head naming path since (the
// announcement of a serial reaches the node as the relying parties who
// read it elsewhere do). That head, whatever its serial (path may be a
// retained file of a later one), is returned as is; judging path against
// it with later alone would answer nil for a file the node serves.
//
// For repo the compact publication of a repository the fleet shares
// (Config.Compact), only Redis is looked in.
func (n *Node) Catchup(ctx context.Context, repo, path string) (*follow.Head, error) {
	local := n.cache.Head(repo)
	if names(local, path) {
		return local, nil // installed since the caller looked
	}
	if r, ok := n.compactRunner(repo); ok {
		return n.catchupCompact(ctx, r, repo, path)
	}
	r := n.runners[repo]
	if r == nil {
		return nil, nil
	}
	if !later(path, local) {
		return nil, nil
	}
	if remote := r.shared(ctx, repo, &r.catch, path, min(2*n.renew, watchWait)); remote != nil {
		return remote, nil
	}
	if r.role() == Watcher {
		return nil, nil // the holder has not published it in time
	}
	h, err := r.catchup(ctx, path)
	if h == nil && ctx.Err() == nil && r.role() == Watcher {
		// Deposed while polling (the poll was cancelled with the
		// follower, or no follower was going to start): the new holder
		// publishes to Redis, where a watcher looks.
		return r.shared(ctx, repo, &r.catch, path, min(2*n.renew, watchWait)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: catch up %s for %s: %w", repo, path, err)
	}
	return h, nil
}

// shared returns Redis's head of key if it names path. A watcher looks
// again every remoteEvery, for wait (0: not again), when it does not: either the holder
// is about to publish it, or it is a made-up name, or Redis has just gone
// and the node will poll alone within a renew interval; so for a bounded
// time (Catchup: two renew intervals at most), not for the request's
// whole deadline. The others look once. A head found is counted, and the
// node told to install it.
func (r *runner) shared(ctx context.Context, key string, cs *catchState, path string, wait time.Duration) *follow.Head {
	n := r.n
	look := func(ctx context.Context) *follow.Head {
		if n.tier.down.Load() {
			return nil // the node turns solo at its next step
		}
		if remote, err := r.remoteHeadOf(ctx, key, cs, path); err == nil && names(remote, path) {
			return remote
		}
		return nil
	}
	found := look(ctx)
	if found == nil && wait > 0 && r.role() == Watcher {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		t := time.NewTicker(remoteEvery)
		defer t.Stop()
		for found == nil && r.role() == Watcher {
			select {
			case <-wctx.Done():
				return nil
			case <-t.C:
			}
			found = look(wctx)
		}
	}
	if found != nil {
		r.count(func(st *RepoStats) { st.CatchupShared++ })
		select {
		case r.poke <- struct{}{}:
		default:
		}
	}
	return found
}

// later reports whether path is a file name of the follower's layout,
// "<session>/<serial>/<hash>/<name>", for a later serial than h's or
// another session.
func later(path string, h *follow.Head) bool {
	session, serial, ok := layoutName(path)
	if !ok {
		return false
	}
	if h == nil {
		return true
	}
	if xml, bin := h.Sessions(); session == xml || session == bin {
		return serial > h.Serial
	}
	return true
}

// layoutName parses path, a file name of the follower's layout,
// "<session>/<serial>/<hash>/<name>".
func layoutName(path string) (session string, serial uint64, ok bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return "", 0, false
	}
	serial, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return parts[0], serial, true
}

// names reports whether head h names path and keeps serving it now.
func names(h *follow.Head, path string) bool {
	if h == nil {
		return false
	}
	now := time.Now()
	for _, f := range h.Files {
		if f.Path == path && (f.Expires.IsZero() || now.Before(f.Expires)) {
			return true
		}
	}
	return false
}

// remoteHead returns Redis's head of the runner's repository, if it names
// path. A head read less than a second ago that names path is reused, and
// Redis is read at most once per remoteEvery otherwise: a flood of names
// of later serials costs ten reads of the head a second, and the server
// indexes few head pointers. A head just published is found within
// remoteEvery.
func (r *runner) remoteHead(ctx context.Context, path string) (*follow.Head, error) {
	return r.remoteHeadOf(ctx, r.repo, &r.catch, path)
}

// remoteHeadOf is remoteHead for the head of key, cached in cs.
func (r *runner) remoteHeadOf(ctx context.Context, key string, cs *catchState, path string) (*follow.Head, error) {
	cs.mu.Lock()
	if h := cs.remote; h != nil {
		age := time.Since(cs.remoteAt)
		if age < remoteEvery || age < minCatchup && names(h, path) {
			cs.mu.Unlock()
			return h, nil
		}
	}
	cs.mu.Unlock()
	h, err := r.n.rs.Head(ctx, key)
	r.n.tier.failed(err)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	cs.remote, cs.remoteAt = h, time.Now()
	cs.mu.Unlock()
	return h, nil
}

// watchWait bounds how long a watcher looks for a file Redis's head does
// not name, whatever the renew interval: a made-up name holds a request
// at most this long.
const watchWait = 10 * time.Second

// remoteEvery is the least time between two reads of Redis's head for
// Catchup.
const remoteEvery = 100 * time.Millisecond

// catchFlight is one poll of the origin started by Catchup; the requests
// that arrive while it runs share it.
type catchFlight struct {
	done chan struct{}
	err  error
}

// catchState is a runner's part of Catchup.
type catchState struct {
	mu       sync.Mutex
	flight   *catchFlight
	last     time.Time    // when the last flight ended
	remote   *follow.Head // Redis's head, read at remoteAt
	remoteAt time.Time
}

// catchup polls the origin with the running follower, once for all the
// requests waiting, and returns the cache's head if it names path then.
// A request that joined a poll already under way, which may have read the
// notification before the origin's new serial, waits for one more.
func (r *runner) catchup(ctx context.Context, path string) (*follow.Head, error) {
	for try := 0; try < 2; try++ {
		f, fctx := r.follow(ctx)
		if f == nil {
			return nil, ctx.Err()
		}
		c, joined := r.catchFlight(f, fctx)
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if h := r.n.cache.Head(r.repo); names(h, path) {
			r.count(func(st *RepoStats) { st.CatchupOrigin++ })
			return h, nil
		}
		if c.err != nil {
			return nil, c.err
		}
		if !joined {
			break
		}
	}
	return nil, nil
}

// catchFlight returns the poll under way, or starts one with f after
// minCatchup has passed since the last; joined reports a poll under way.
func (r *runner) catchFlight(f *follow.Follower, fctx context.Context) (c *catchFlight, joined bool) {
	cs := &r.catch
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.flight != nil {
		return cs.flight, true
	}
	c = &catchFlight{done: make(chan struct{})}
	cs.flight = c
	wait := minCatchup - time.Since(cs.last)
	// The poll outlives the request that started it (the others share
	// it), bounded by the follower's own deadlines and its context, which
	// stopFollower cancels: a deposed follower publishes nothing more.
	nctx := fctx
	go func() {
		defer close(c.done)
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-nctx.Done():
				t.Stop()
			}
		}
		_, c.err = f.Sync(nctx)
		cs.mu.Lock()
		cs.flight, cs.last = nil, time.Now()
		cs.mu.Unlock()
	}()
	return c, false
}

// follow returns the running follower and its context, waiting until ctx
// ends for one to start: a node that has just found Redis down starts its
// follower at its next step. It returns nil once the node is a watcher,
// which starts none (TestCatchupDeposedWhileWaiting).
func (r *runner) follow(ctx context.Context) (*follow.Follower, context.Context) {
	var tick <-chan time.Time
	for {
		r.mu.Lock()
		f, fctx, ch := r.follower, r.fctx, r.started
		r.mu.Unlock()
		if f != nil {
			return f, fctx
		}
		if r.role() == Watcher {
			return nil, nil // no follower starts on a watcher
		}
		if tick == nil {
			t := time.NewTicker(remoteEvery) // the role changes without a signal here
			defer t.Stop()
			tick = t.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

func (r *runner) count(fn func(*RepoStats)) {
	r.mu.Lock()
	fn(&r.st)
	r.mu.Unlock()
}
