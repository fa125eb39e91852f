package fleet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// runner does a node's part for one repository. Its fields other than mu's
// belong to the goroutine of run.
type runner struct {
	n    *Node
	cfg  follow.Config
	repo string
	// compact is the key of the repository's compact publication when
	// the fleet shares it (Config.Compact), else "".
	compact string
	poke    chan struct{} // an announcement of a new head
	// releasec: an announcement of a release request (RequestRelease).
	releasec chan struct{}
	log      *slog.Logger

	lease      redisstore.Lease
	keepStop   context.CancelFunc // the lease keeper's, or nil
	keepDone   chan struct{}      // closed when the keeper returned
	lostc      chan error         // the keeper's report of a failed renewal
	stop       context.CancelFunc // the running follower's, or nil
	done       chan struct{}      // closed when the follower's Run returned
	lastResync time.Time          // of the last install or reconcile
	yielded    time.Time          // when this node gave the lease up
	freeSince  time.Time          // since when the lease is seen free

	// publishing says the node may publish the compact form
	// (Node.Publishes): set once the holder's compact head is Redis's
	// (reconcileCompact), cleared when the lease goes or the two differ.
	publishing atomic.Bool

	catch  catchState
	ccatch catchState // Catchup's, for the compact publication

	mu       sync.Mutex
	st       RepoStats
	follower *follow.Follower
	fctx     context.Context // the follower's context, for Catchup's polls
	started  chan struct{}   // closed when a follower starts; then replaced
	syncs    uint64          // of followers that stopped
}

// run is the repository's loop: one step at every renew interval, and an
// install when Redis announces a new head.
func (r *runner) run(ctx context.Context) {
	defer r.release()
	defer r.stopFollower()
	defer r.stopKeeper()
	t := time.NewTicker(r.n.renew)
	defer t.Stop()
	r.step(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.step(ctx)
		case err := <-r.lostc:
			r.lost(ctx, err)
		case <-r.poke:
			if r.role() == Watcher {
				r.install(ctx)
			}
		case <-r.releasec:
			if r.role() == Holder {
				r.pollNow()
			}
		}
	}
}

// step, for a holder, hands the lease over if the fleet's leases are
// uneven and checks Redis's copy of its head now and then; for the others
// it tries to take the lease and changes the role by the outcome. The
// holder's lease is renewed apart, by keep, so that blob copying here
// never delays a renewal.
func (r *runner) step(ctx context.Context) {
	rs, ttl := r.n.rs, r.n.ttl
	if r.role() == Holder {
		if r.n.yield(ctx) {
			r.giveUp(ctx)
			return
		}
		switch {
		case time.Since(r.lastResync) >= r.n.resync:
			r.reconcile(ctx)
		case r.compact != "" && !r.publishing.Load():
			// Redis's compact head not taken yet: tried at every
			// step, and nothing published until then.
			r.reconcileCompact(ctx)
		}
		return
	}
	if r.role() == Watcher && !r.mayTake(ctx) {
		if time.Since(r.lastResync) >= r.n.resync {
			r.install(ctx)
		}
		return
	}
	lease, ok, err := rs.Acquire(ctx, r.repo, r.n.name, ttl)
	r.n.tier.failed(err)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		if r.role() != Solo {
			r.log.Warn("fleet: redis unreachable; polling alone", "err", err)
			r.setRole(Solo, 0)
			r.setErr(err)
		}
		r.startFollower(ctx)
	case ok:
		r.freeSince = time.Time{}
		r.n.took()
		r.take(ctx, lease)
	default:
		if r.role() == Solo {
			r.stopFollower()
		}
		changed := r.role() != Watcher
		r.setRole(Watcher, 0)
		if changed || time.Since(r.lastResync) >= r.n.resync {
			r.install(ctx)
		}
	}
}

// lost handles the end of the holder's lease that keep reported: err
// wraps redisstore.ErrNotHeld when another node holds it now, and is
// another error when Redis is unreachable.
func (r *runner) lost(ctx context.Context, err error) {
	if r.role() != Holder {
		return
	}
	r.stopKeeper()
	r.publishing.Store(false)
	r.n.tier.drop(r.repo)
	if errors.Is(err, redisstore.ErrNotHeld) {
		r.log.Warn("fleet: lease lost", "token", r.lease.Token)
		r.stopFollower()
		r.setRole(Watcher, 0)
		r.install(ctx)
		return
	}
	// Redis is unreachable: keep polling, as every node does.
	r.log.Warn("fleet: cannot renew the lease; polling alone", "err", err)
	r.setRole(Solo, 0)
	r.setErr(err)
}

// keep renews lease l every renew interval until ctx ends or a renewal
// fails, which it reports on lostc. It runs beside the runner's loop, so
// that installs and blob repairs there never hold a renewal back.
func (r *runner) keep(ctx context.Context, l redisstore.Lease, lostc chan<- error) {
	t := time.NewTicker(r.n.renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.n.rs.Renew(ctx, l, r.n.ttl)
		r.n.tier.failed(err)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			lostc <- err // buffered: one report, then the keeper ends
			return
		}
	}
}

// startKeeper starts keep for lease l, stopping an earlier keeper.
func (r *runner) startKeeper(ctx context.Context, l redisstore.Lease) {
	r.stopKeeper()
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.keepStop, r.keepDone = cancel, done
	go func() {
		defer close(done)
		r.keep(kctx, l, r.lostc)
	}()
}

// stopKeeper stops the keeper, if one runs, waits for it and drops a
// report it left.
func (r *runner) stopKeeper() {
	if r.keepStop == nil {
		return
	}
	r.keepStop()
	<-r.keepDone
	r.keepStop, r.keepDone = nil, nil
	select {
	case <-r.lostc:
	default:
	}
}

// take makes this node the holder: it installs Redis's head if it is newer
// than the cache's, starts the follower from the cache's head, and writes
// that head to Redis if Redis lacks it.
func (r *runner) take(ctx context.Context, lease redisstore.Lease) {
	r.publishing.Store(false)
	r.lease = lease
	r.n.tier.hold(lease)
	r.setRole(Holder, lease.Token)
	r.startKeeper(ctx, lease)
	r.mu.Lock()
	r.st.Leases++
	r.mu.Unlock()
	r.log.Info("fleet: took the lease", "token", lease.Token)
	remote, err := r.n.rs.Head(ctx, r.repo)
	if err != nil {
		r.log.Warn("fleet: read the head from redis", "err", err)
	} else if newer(remote, r.n.cache.Head(r.repo)) {
		// Another node got further: continue from its state.
		r.stopFollower()
		if err := r.adopt(ctx, r.repo, remote); err != nil {
			r.log.Warn("fleet: install the head from redis", "err", err)
		}
	}
	r.startFollower(ctx)
	// The compact publication continues from the fleet's, which the
	// last holder signed: reconcile installs it, and only then lets this
	// node's validator publish (and tells Took).
	r.reconcile(ctx)
	if r.compact == "" && r.n.tookHook != nil {
		r.n.tookHook(r.repo)
	}
}

// reconcile, for the holder, writes the cache's head to Redis if Redis's
// is missing, cannot be read, or is older, and puts again the blobs Redis
// lost.
func (r *runner) reconcile(ctx context.Context) {
	r.lastResync = time.Now()
	r.reconcileKey(ctx, r.repo)
	if r.compact != "" {
		r.reconcileCompact(ctx)
	}
}

// reconcileCompact, for the holder, makes its compact head the fleet's
// before its validator continues it: it installs Redis's when the two
// differ (a head loaded from the state directory, an install that
// failed), or, when Redis has none or one it cannot read (Redis came back
// empty), writes its own there; then it lets the node publish. Until it
// succeeds the node publishes nothing, since a serial made from another
// head than Redis's would go back, or fork the session.
func (r *runner) reconcileCompact(ctx context.Context) {
	remote, err := r.n.rs.Head(ctx, r.compact)
	r.n.tier.failed(err)
	bad := errors.Is(err, redisstore.ErrBadHead)
	local := r.n.cache.Head(r.compact)
	switch {
	case err != nil && !bad:
	case bad || remote == nil:
		if local != nil {
			err = r.n.tier.publishCompact(ctx, r.compact, local, true)
		} else {
			err = nil // nothing to continue: the validator starts a session
		}
	case cache.SameCompact(remote, local):
		err = r.n.tier.repair(ctx, remote)
	default:
		r.publishing.Store(false)
		err = r.installCompact(ctx)
	}
	if err != nil {
		r.publishing.Store(false)
		if ctx.Err() == nil {
			r.log.Warn("fleet: the compact head is not the fleet's; not publishing", "err", err)
			r.setErr(err)
		}
		return
	}
	if !r.publishing.Swap(true) && r.n.tookHook != nil {
		r.n.tookHook(r.repo)
	}
}

// reconcileKey is reconcile for the head of key, the repository's or
// its compact publication's.
func (r *runner) reconcileKey(ctx context.Context, key string) {
	local := r.n.cache.Head(key)
	if local == nil {
		return
	}
	remote, err := r.n.rs.Head(ctx, key)
	r.n.tier.failed(err)
	bad := errors.Is(err, redisstore.ErrBadHead) // written over below
	if err != nil && !bad {
		return
	}
	if bad || remote == nil || newer(local, remote) {
		err = r.n.tier.publish(ctx, key, local)
	} else {
		err = r.n.tier.repair(ctx, remote)
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("fleet: write the head to redis", "err", err)
		r.setErr(err)
	}
}

// install takes Redis's head into the cache if it is newer than the
// cache's, and the compact publication's if the fleet shares it.
func (r *runner) install(ctx context.Context) {
	r.lastResync = time.Now()
	if r.compact != "" {
		// Logged and counted there; tried again at the next install.
		defer func() { _ = r.installCompact(ctx) }()
	}
	remote, err := r.n.rs.Head(ctx, r.repo)
	r.n.tier.failed(err)
	if err != nil || !newer(remote, r.n.cache.Head(r.repo)) {
		return
	}
	err = r.adopt(ctx, r.repo, remote)
	r.mu.Lock()
	if err != nil {
		r.st.InstallErrors++
	} else {
		r.st.Installed++
	}
	r.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		r.log.Warn("fleet: head from redis not installed", "serial", remote.Serial, "err", err)
		r.setErr(err)
	}
}

// adopt installs h, taken from Redis, into the cache: every blob it needs
// that the current head does not name is read (from memory, the disk or
// Redis, checked against its hash) and put, so that the disk holds it too,
// before the head. If a blob cannot be read, the cache keeps its head.
//
// The blobs of the current head are taken as stored: true of a head this
// node installed, not of one Run loaded from Redis into memory alone (a
// node joining a running fleet). When a tier then refuses h for a blob it
// lacks, every blob h needs is put and the head tried again.
func (r *runner) adopt(ctx context.Context, key string, h *follow.Head) error {
	c := r.n.cache
	now := time.Now()
	// The live blobs of the head served now are stored already.
	have := make(map[[32]byte]bool)
	if cur := c.Head(key); cur != nil {
		// Only a shortcut: what cannot be read is copied below.
		for _, sum := range cache.NeededLax(ctx, cur, now, c.Blob) {
			have[sum] = true
		}
	}
	sums, err := cache.Needed(ctx, h, now, c.Blob)
	if err != nil {
		return fmt.Errorf("fleet: install serial %d of %s: %w", h.Serial, key, err)
	}
	fresh := 0
	for _, sum := range sums {
		if !have[sum] {
			fresh++
		}
	}
	cold := c.Cold() && fresh >= coldBlobs
	if err := r.putBlobs(ctx, h, sums, have, cold); err != nil {
		return err
	}
	err = c.PutHead(ctx, key, h)
	if err != nil && len(have) > 0 && errors.Is(err, fs.ErrNotExist) {
		r.log.Info("fleet: a tier lacks blobs of the head served; putting every blob of the new head", "serial", h.Serial, "err", err)
		if err := r.putBlobs(ctx, h, sums, nil, cold); err != nil {
			return err
		}
		err = c.PutHead(ctx, key, h)
	}
	if err != nil {
		return fmt.Errorf("fleet: install serial %d of %s: %w", h.Serial, key, err)
	}
	if cold {
		// As a follower's cold serial (proxy/follow, readBack): the old
		// state's blobs, unpinned by the switch, are collected before the
		// new ones are read back into memory.
		runtime.GC()
		n, err := c.Warm(ctx, key)
		r.mu.Lock()
		r.st.ColdInstalls++
		r.mu.Unlock()
		if err != nil {
			r.log.Warn("fleet: the new state not all read back; the rest is read on demand", "serial", h.Serial, "read", n, "err", err)
		}
	}
	if key == r.repo && r.n.installed != nil {
		r.n.installed(r.repo, h)
	}
	return nil
}

// coldBlobs is the fewest new blobs a head from Redis brings for them to
// be put cold (cache.Cache.PutCold): a serial that rewrote most of a big
// repository, whose new state read into memory before the switch would
// double the node's peak.
var coldBlobs = 128 // a variable for tests

// putBlobs reads the blobs sums of h but those in have and puts them in
// the cache; cold, in the state directory alone (Peek and PutCold: one
// blob in memory at a time), read back after the switch.
func (r *runner) putBlobs(ctx context.Context, h *follow.Head, sums [][32]byte, have map[[32]byte]bool, cold bool) error {
	c := r.n.cache
	for _, sum := range sums {
		if have[sum] {
			continue
		}
		read := c.Blob
		if cold {
			read = c.Peek
		}
		b, err := read(ctx, sum)
		if err != nil {
			return fmt.Errorf("fleet: install serial %d of %s: blob %x: %w", h.Serial, r.repo, sum[:8], err)
		}
		stored := false
		if cold {
			if stored, err = c.PutCold(ctx, sum, b); err != nil {
				return fmt.Errorf("fleet: install serial %d of %s: %w", h.Serial, r.repo, err)
			}
		}
		if !stored {
			if err := c.PutBlob(ctx, sum, b); err != nil {
				return fmt.Errorf("fleet: install serial %d of %s: %w", h.Serial, r.repo, err)
			}
		}
	}
	return nil
}

// newer reports whether a is a later state than b: a higher serial in the
// same session, or else a later publication time.
func newer(a, b *follow.Head) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	case a.Session == b.Session && a.Origin == b.Origin:
		return a.Serial > b.Serial
	}
	return a.Time.After(b.Time)
}

// startFollower starts a follower from the cache's head, unless one runs.
func (r *runner) startFollower(ctx context.Context) {
	if r.stop != nil {
		return
	}
	cfg := r.cfg
	cfg.Start = r.n.cache.Head(r.repo)
	if r.n.wrap != nil {
		cfg.Store = r.n.wrap(r.repo, cfg.Store)
	}
	f, err := follow.New(cfg)
	if err != nil {
		r.log.Error("fleet: start the follower", "err", err)
		r.setErr(err)
		return
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	r.stop, r.done = stop, done
	r.mu.Lock()
	r.follower, r.fctx = f, fctx
	if r.started != nil {
		close(r.started)
	}
	r.started = make(chan struct{})
	r.mu.Unlock()
	go func() {
		defer close(done)
		f.Run(fctx)
	}()
}

// stopFollower stops the follower, if one runs, and waits for it.
func (r *runner) stopFollower() {
	if r.stop == nil {
		return
	}
	r.stop()
	<-r.done
	r.stop, r.done = nil, nil
	r.mu.Lock()
	r.syncs += r.follower.Stats().Syncs
	r.follower, r.fctx = nil, nil
	r.mu.Unlock()
	if r.n.stopped != nil {
		r.n.stopped(r.repo)
	}
}

// release gives the lease up when Run ends, so that another node takes
// over at once.
func (r *runner) release() {
	r.stopKeeper()
	r.publishing.Store(false)
	if r.role() != Holder || !r.n.released {
		return
	}
	r.n.tier.drop(r.repo)
	ctx, cancel := context.WithTimeout(context.Background(), r.n.renew)
	defer cancel()
	if err := r.n.rs.Release(ctx, r.lease); err != nil {
		r.log.Warn("fleet: release the lease", "err", err)
	}
}

func (r *runner) role() Role {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Role
}

func (r *runner) setRole(role Role, token uint64) {
	r.mu.Lock()
	r.st.Role, r.st.Token = role, token
	r.mu.Unlock()
}

func (r *runner) setErr(err error) {
	r.mu.Lock()
	r.st.LastErr = err.Error()
	r.mu.Unlock()
}

func (r *runner) stats() RepoStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Repo = r.repo
	st.Syncs = r.syncs
	if r.follower != nil {
		st.Syncs += r.follower.Stats().Syncs
	}
	return st
}

// mayTake reports whether a watcher tries to take the lease now: not
// within three renew intervals of giving it up, and, at or above its fair
// share, only once the lease has been free for two renew intervals.
func (r *runner) mayTake(ctx context.Context) bool {
	if time.Since(r.yielded) < 3*r.n.renew {
		return false
	}
	if r.n.eager(ctx) {
		return true
	}
	holder, err := r.n.rs.Holder(ctx, r.repo)
	if err != nil {
		return true // Acquire fails too, and the node polls alone
	}
	if holder != "" {
		r.freeSince = time.Time{}
		return false
	}
	if r.freeSince.IsZero() {
		r.freeSince = time.Now()
	}
	return time.Since(r.freeSince) >= 2*r.n.renew
}

// giveUp releases the lease so that a node with fewer takes it over.
func (r *runner) giveUp(ctx context.Context) {
	r.log.Info("fleet: giving the lease up to spread the fleet's leases", "token", r.lease.Token)
	r.publishing.Store(false)
	r.stopKeeper()
	r.n.tier.drop(r.repo)
	r.stopFollower()
	if err := r.n.rs.Release(ctx, r.lease); err != nil {
		r.log.Warn("fleet: release the lease", "err", err)
	}
	r.yielded = time.Now()
	r.setRole(Watcher, 0)
}
