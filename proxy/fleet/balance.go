package fleet

import (
	"context"
	"sync"
	"time"
)

// share spreads the leases over the nodes alive: a node that holds more
// than its fair share (the leases divided by the nodes, rounded up) gives
// one up per ResyncInterval, and a node at or above its share takes a free
// lease only once it has been free for two renew intervals, leaving it to
// the nodes below theirs.
type share struct {
	mu        sync.Mutex
	at        time.Time // of mine and fair
	ok        bool      // mine and fair known
	mine      int       // leases this node holds
	total     int       // leases held in the fleet
	nodes     int       // nodes alive or holding a lease
	lastYield time.Time
}

// fair is the most leases a node should hold: the leases divided by the
// nodes, rounded up, and at least one. s.mu is held.
func (s *share) fairLocked() int {
	return max(1, (s.total+s.nodes-1)/s.nodes)
}

// refreshShare counts the fleet's nodes and leases, at most once per
// ResyncInterval.
func (n *Node) refreshShare(ctx context.Context) {
	n.share.mu.Lock()
	fresh := time.Since(n.share.at) < n.resync
	n.share.mu.Unlock()
	if fresh {
		return
	}
	counts, err := n.rs.Fleet(ctx)
	n.share.mu.Lock()
	defer n.share.mu.Unlock()
	n.share.at = time.Now()
	if err != nil {
		n.share.ok = false
		return
	}
	counts[n.name] += 0
	total := 0
	for _, c := range counts {
		total += c
	}
	n.share.ok = true
	n.share.mine, n.share.total, n.share.nodes = counts[n.name], total, len(counts)
}

// yield reports whether this node should give one lease up now.
func (n *Node) yield(ctx context.Context) bool {
	n.refreshShare(ctx)
	n.share.mu.Lock()
	defer n.share.mu.Unlock()
	s := &n.share
	if !s.ok || s.mine <= s.fairLocked() || time.Since(s.lastYield) < n.resync {
		return false
	}
	s.lastYield = time.Now()
	s.mine--
	s.total--
	return true
}

// eager reports whether this node takes a free lease at once: it holds
// fewer than its fair share, or the fleet is unknown.
func (n *Node) eager(ctx context.Context) bool {
	n.refreshShare(ctx)
	n.share.mu.Lock()
	defer n.share.mu.Unlock()
	return !n.share.ok || n.share.mine < n.share.fairLocked()
}

// took counts a lease taken until the next refresh.
func (n *Node) took() {
	n.share.mu.Lock()
	n.share.mine++
	n.share.total++
	n.share.mu.Unlock()
}

// beat tells the fleet this node is alive, every renew interval.
func (n *Node) beat(ctx context.Context) {
	t := time.NewTicker(n.renew)
	defer t.Stop()
	for {
		if err := n.rs.Beat(ctx, n.name, n.ttl); err != nil && ctx.Err() == nil {
			n.log.Debug("fleet: heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
