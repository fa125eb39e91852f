package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// ReleaseTTL is how long a release request waits in Redis for the lease
// holder to honour it: past a failover (a lease TTL and the new holder's
// first poll) and a slow poll interval. It names one serial of one
// session, so that waiting long releases nothing else.
const ReleaseTTL = time.Hour

// ErrNotHeld: RequestRelease for a repository whose holder reports no
// held serial.
var ErrNotHeld = fmt.Errorf("no serial held in the fleet: %w", fs.ErrNotExist)

// releaseRequest is what RequestRelease writes to Redis.
type releaseRequest struct {
	Node    string    `json:"node"` // the node the operator asked
	Time    time.Time `json:"time"`
	Session string    `json:"session"`
	Serial  uint64    `json:"serial"`
}

// RequestRelease queues an operator's release of the serial the lease
// holder's validation gate holds for repo, for a node that does not hold
// the lease: the holder's follower shares what its store holds back
// (follow.Stats.Holding, through Reporter), and the request names that
// serial. It is stored in Redis for ReleaseTTL and announced; the holder
// polls at the announcement, and its gate asks Released at each attempt
// of the serial. It returns what it queued, or an error wrapping
// ErrNotHeld when the holder reports nothing held (a hold is shared
// within a renew interval).
func (n *Node) RequestRelease(ctx context.Context, repo string) (string, error) {
	if n.runners[repo] == nil {
		return "", fmt.Errorf("fleet: release %s: not followed: %w", repo, fs.ErrNotExist)
	}
	vals, err := n.rs.Statuses(ctx, []string{repo})
	n.tier.failed(err)
	if err != nil {
		return "", fmt.Errorf("fleet: release %s: %w", repo, err)
	}
	holder, err := n.rs.Holder(ctx, repo)
	if err != nil {
		return "", fmt.Errorf("fleet: release %s: %w", repo, err)
	}
	var s shared
	if b, ok := vals[repo]; ok {
		if err := json.Unmarshal(b, &s); err != nil {
			return "", fmt.Errorf("fleet: release %s: the shared status: %w", repo, err)
		}
	}
	hd := s.Follow.Holding
	if hd.Serial == 0 {
		if s.Node == "" {
			return "", fmt.Errorf("fleet: release %s: no node shares its polling: %w", repo, ErrNotHeld)
		}
		return "", fmt.Errorf("fleet: release %s: %s reports none (at %s): %w", repo, s.Node, s.Time.UTC().Format(time.RFC3339), ErrNotHeld)
	}
	if cur := n.cache.Head(repo); cur != nil && cur.Session == hd.Session && cur.Serial >= hd.Serial {
		return "", fmt.Errorf("fleet: release %s: serial %d, which %s reported held, is served already: %w", repo, hd.Serial, s.Node, ErrNotHeld)
	}
	req := releaseRequest{Node: n.name, Time: time.Now().UTC(), Session: hd.Session, Serial: hd.Serial}
	b, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("fleet: release %s: %w", repo, err)
	}
	if err := n.rs.RequestRelease(ctx, repo, b, ReleaseTTL); err != nil {
		n.tier.failed(err)
		return "", fmt.Errorf("fleet: %w", err)
	}
	if holder == "" {
		holder = "none now"
	}
	n.log.Warn("fleet: release requested for the lease holder", "repo", repo, "serial", hd.Serial, "holder", holder, "held_by", s.Node)
	return fmt.Sprintf("queued: release of serial %d (held by %s since %s: %s) requested in redis for the lease holder (%s), "+
		"which publishes it at its next poll (prompted now); a node taking the lease over honours it too, for %v",
		hd.Serial, s.Node, hd.Since.UTC().Format(time.RFC3339), hd.Err, holder, ReleaseTTL), nil
}

// Released reports whether a release of h, the serial the validation
// gate holds for repo on this node, waits in Redis (RequestRelease), and
// takes the request: the Released hook of proxy/validate's Config. by
// names the node the operator asked, for the log. Only a lease holder
// takes a request, and only one naming h's session and serial.
func (n *Node) Released(ctx context.Context, repo string, h *follow.Head) (by string, ok bool) {
	r := n.runners[repo]
	if r == nil || r.role() != Holder || n.tier.down.Load() {
		return "", false
	}
	b, err := n.rs.ReleaseRequest(ctx, repo)
	n.tier.failed(err)
	if err != nil || b == nil {
		if err != nil && ctx.Err() == nil {
			r.log.Warn("fleet: read the release request", "err", err)
		}
		return "", false
	}
	var req releaseRequest
	if err := json.Unmarshal(b, &req); err != nil {
		r.log.Warn("fleet: a release request in redis does not decode", "err", err)
		return "", false
	}
	if req.Session != h.Session || req.Serial != h.Serial {
		return "", false // for another serial: the holder moved on, or not there yet
	}
	took, err := n.rs.TakeReleaseRequest(ctx, repo, b)
	n.tier.failed(err)
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.Warn("fleet: take the release request", "err", err)
	}
	if !took {
		return "", false // replaced meanwhile, or taken by another
	}
	by = fmt.Sprintf("an operator on %s, through redis at %s", req.Node, req.Time.Format(time.RFC3339))
	r.log.Warn("fleet: release request honoured", "serial", h.Serial, "by", req.Node, "requested", req.Time)
	return by, true
}

// pollNow makes the running follower poll the origin now (at most once
// per minCatchup, shared with Catchup's polls), without waiting for it.
func (r *runner) pollNow() {
	r.mu.Lock()
	f, fctx := r.follower, r.fctx
	r.mu.Unlock()
	if f != nil {
		r.catchFlight(f, fctx)
	}
}
