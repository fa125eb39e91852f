package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// A repository's compact publication (proxy/validate's Compact, under
// cache.CompactKey of the repository's key) is shared by the fleet when
// Config.Compact names the repository. Its session and serials are not
// the origin's but a count kept by whoever signs it, so two nodes that
// each published their own would serve other bytes under one session and
// serial. In a fleet the holder of the repository's lease alone publishes
// it (Node.Publishes): its validator signs the next serial, the tier
// writes it to Redis fenced by the lease, and the other nodes install it
// as they install the repository's heads. A node that takes the lease
// over makes its compact head Redis's first (reconcileCompact), and only
// then may its validator continue that publication (same session, next
// serial; Config.Took is told); the same state gives the same groups,
// hence no new serial for a takeover alone. Until the install succeeds
// (a blob Redis lost, say) it publishes nothing and tries again at every
// renew interval.
//
// The tier writes a compact head to Redis before the node's other tiers
// (HeadFirst), and only the next serial of Redis's session or a new
// session (publishCompact): a serial the fleet refused is kept nowhere,
// not in the state directory a restart loads, and a validator run that
// began before the lease went and came back cannot write over a later
// serial. Redis's compact head is the fleet's word: a node installs it
// when it differs from the cache's at all, not only when it is newer.
// While Redis is unreachable no node publishes compact serials: each
// keeps serving the last one installed (stale, and shown as such on
// /status), since nodes polling alone may see different states and would
// sign different serials of one session.
//
// Not covered: Redis that comes back empty gets the compact head of the
// node that takes the lease first, which may be older than one the others
// installed just before Redis went (a watcher that had not installed the
// last serial yet); the others then install it, and the holder's next
// serial reuses that serial number with other bytes. Redis's persistence
// (or a replica) avoids it.

// Publishes reports whether this node publishes the compact form of the
// repository with key repo now: it holds the repository's lease and Redis
// answers. The validator asks it before each compact serial
// (proxy/validate Compact.Publish).
func (n *Node) Publishes(repo string) bool {
	r := n.runners[repo]
	if r == nil || r.compact == "" || n.tier.down.Load() || r.role() != Holder || !r.publishing.Load() {
		return false
	}
	_, held := n.tier.lease(repo)
	return held
}

// installCompact takes Redis's compact head of the runner's repository
// into the cache when it differs from the cache's. It fails when Redis's
// head cannot be read (but for one undecodable: nothing to install) or
// installed.
func (r *runner) installCompact(ctx context.Context) error {
	remote, err := r.n.rs.Head(ctx, r.compact)
	r.n.tier.failed(err)
	if errors.Is(err, redisstore.ErrBadHead) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleet: read the compact head of %s: %w", r.repo, err)
	}
	if remote == nil || cache.SameCompact(remote, r.n.cache.Head(r.compact)) {
		return nil
	}
	r.n.tier.install(r.compact, remote)
	err = r.adopt(ctx, r.compact, remote)
	r.n.tier.install(r.compact, nil)
	r.mu.Lock()
	if err != nil {
		r.st.InstallErrors++
	} else {
		r.st.CompactInstalled++
	}
	r.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		r.log.Warn("fleet: compact head from redis not installed", "serial", remote.Serial, "err", err)
		r.setErr(err)
	}
	return err
}

// catchupCompact is Catchup for path, a file of the compact publication
// key of r's repository: only Redis can have it (a compact file is never
// fetched from an origin). Unlike a repository's head, which the holder
// may serve before Redis has it (kept local while Redis fails), a compact
// head reaches Redis before any node serves it (tier.PutHead): a name
// Redis's head does not name now was never in a notification a relying
// party could read, so nothing is waited for, and a made-up name costs
// one read of Redis's head at most, two when the copy of Redis's head at
// hand (read at most once per remoteEvery, shared by the requests) was
// read before the request came: a watcher then waits for the next read.
func (n *Node) catchupCompact(ctx context.Context, r *runner, key, path string) (*follow.Head, error) {
	if r.compact != key || !laterCompact(path, n.cache.Head(key)) {
		return nil, nil
	}
	start := time.Now()
	if h := r.shared(ctx, key, &r.ccatch, path, 0); h != nil || r.role() != Watcher {
		return h, nil
	}
	r.ccatch.mu.Lock()
	at := r.ccatch.remoteAt
	r.ccatch.mu.Unlock()
	if !at.Before(start) {
		return nil, nil // read for this request
	}
	t := time.NewTimer(time.Until(at.Add(remoteEvery)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, nil
	case <-t.C:
	}
	return r.shared(ctx, key, &r.ccatch, path, 0), nil
}

// laterCompact reports whether path is a file name of a compact
// publication, "compact/<session>/<serial>/<hash>/<name>", of another
// session than h's or a later serial.
func laterCompact(path string, h *follow.Head) bool {
	rest, ok := strings.CutPrefix(path, "compact/")
	if !ok {
		return false
	}
	session, serial, ok := layoutName(rest)
	return ok && (h == nil || session != h.Session || serial > h.Serial)
}

// compactRunner returns the runner whose repository's compact
// publication is key, if the fleet shares it.
func (n *Node) compactRunner(key string) (*runner, bool) {
	repo, ok := cache.CompactOf(key)
	if !ok {
		return nil, false
	}
	r := n.runners[repo]
	return r, r != nil && r.compact == key
}
