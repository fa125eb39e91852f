package fleet

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// RepoStatus is what a node knows of the polling of one repository: its
// own part, and the follower of the node that polls the origin.
type RepoStatus struct {
	Repo string
	Role Role
	// Holder names the node polling the origin: this node while Holder
	// or Solo, else the lease's holder as last read from Redis ("" when
	// the lease is free or Redis was not read yet).
	Holder string
	// RedisUp: the node's last Redis call succeeded.
	RedisUp bool
	// Leases counts the times this node took the lease.
	Leases uint64
	// Err is this node's last fleet error (a lease it could not renew, a
	// head it could not install); "" when none.
	Err string
	// Follow holds the counters of the follower polling the origin: this
	// node's while Holder or Solo; otherwise the holder's, as it last
	// shared them through Redis (Reporter), zero when none was shared.
	Follow follow.Stats
	// Shared is when the holder shared Follow; zero when Follow is this
	// node's own.
	Shared time.Time
}

// Status returns what this node itself knows of repo: its role, its
// lease count and last error, and its follower's counters while it polls.
// It reads the runner's fields under the runner's lock and makes no Redis
// call; false for a repository the node does not follow.
func (n *Node) Status(repo string) (RepoStatus, bool) {
	r := n.runners[repo]
	if r == nil {
		return RepoStatus{}, false
	}
	r.mu.Lock()
	st := RepoStatus{Repo: repo, Role: r.st.Role, Leases: r.st.Leases, Err: r.st.LastErr}
	f := r.follower
	r.mu.Unlock()
	if f != nil {
		st.Follow = f.Stats()
	}
	if st.Role != Watcher {
		st.Holder = n.name
	}
	st.RedisUp = !n.tier.down.Load()
	return st, true
}

// shared is the status a holder writes to Redis for the other nodes.
type shared struct {
	Node   string       `json:"node"`
	Time   time.Time    `json:"time"`
	Follow follow.Stats `json:"follow"`
}

// Reporter makes every node of a fleet show how each repository's polling
// goes, not only the node polling it: at each renew interval it writes the
// follower counters of the repositories this node holds to Redis
// (redisstore.Store.PutStatus, expiring after three lease TTLs), and reads
// those of the others with their lease holders. Status merges them with
// Node.Status.
type Reporter struct {
	n *Node

	mu      sync.Mutex
	remote  map[string]shared // by repository, as last read
	holders map[string]string // lease holders, as last read
}

// NewReporter returns a Reporter for n; Run drives it.
func NewReporter(n *Node) *Reporter {
	return &Reporter{n: n, remote: make(map[string]shared), holders: make(map[string]string)}
}

// Run shares and reads the statuses at once and then every renew interval
// until ctx ends, and returns ctx's error. Redis failures are left to the
// next round: the last statuses read stay, with their times.
func (p *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(p.n.renew)
	defer t.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// round does one exchange with Redis.
func (p *Reporter) round(ctx context.Context) {
	n := p.n
	var others []string
	for _, repo := range n.repos {
		st, _ := n.Status(repo)
		if st.Role != Holder {
			others = append(others, repo)
			continue
		}
		b, err := json.Marshal(shared{Node: n.name, Time: time.Now(), Follow: st.Follow})
		if err == nil {
			err = n.rs.PutStatus(ctx, repo, b, 3*n.ttl)
		}
		if err != nil && ctx.Err() == nil {
			n.log.Debug("fleet: share the status", "repo", repo, "err", err)
		}
	}
	if len(others) == 0 {
		return
	}
	vals, err := n.rs.Statuses(ctx, others)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Debug("fleet: read the statuses", "err", err)
		}
		return
	}
	holders := make(map[string]string, len(others))
	for _, repo := range others {
		h, err := n.rs.Holder(ctx, repo)
		if err != nil {
			return
		}
		holders[repo] = h
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for repo, b := range vals {
		var s shared
		if err := json.Unmarshal(b, &s); err != nil {
			n.log.Warn("fleet: a status in redis does not decode", "repo", repo, "err", err)
			continue
		}
		p.remote[repo] = s
	}
	for repo, h := range holders {
		p.holders[repo] = h
	}
}

// Status returns Node.Status for repo, completed on a node that does not
// poll it with the holder's name and follower counters as last read.
func (p *Reporter) Status(repo string) (RepoStatus, bool) {
	st, ok := p.n.Status(repo)
	if !ok || st.Role != Watcher {
		return st, ok
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st.Holder = p.holders[repo]
	if s, ok := p.remote[repo]; ok {
		st.Follow, st.Shared = s.Follow, s.Time
		if st.Holder == "" {
			st.Holder = s.Node
		}
	}
	return st, true
}
