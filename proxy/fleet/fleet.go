// Package fleet implements a node of an rrdp-proxy fleet: nodes that share
// a Redis (cache/redisstore) so that one of them polls each RRDP
// repository's origin (RFC 8182) and the others serve the states it
// publishes.
//
// For each repository a node tries to take the repository's lease in
// Redis. The holder runs the follower (proxy/follow), renews the lease at
// a third of its TTL, and writes every head fenced with the lease's token,
// so that a holder that lost its lease without noticing can never replace
// the head of the node that took over. The others subscribe to the heads
// channel and install each new head from Redis into their own cache once
// they have read every blob it needs, checked against its hash; they also
// compare heads with Redis now and then, since pub/sub may drop messages,
// and try to take the lease at every renew interval, so that one of them
// takes over within about a TTL and a renew interval of the holder's death.
// A node that takes over continues from the head it serves
// (follow.Config.Start), without fetching the snapshot again.
//
// Nodes announce themselves in Redis (a heartbeat key), and the leases
// spread over them: a node holding more than its fair share (leases over
// nodes, rounded up) gives one up per ResyncInterval, and a node at or
// above its share leaves a free lease to the others for two renew
// intervals.
//
// When Redis is unreachable every node polls the origin itself and keeps
// serving from memory; when Redis returns, the nodes take leases again and
// converge on one holder per repository, which writes its head to Redis.
//
// Validation (proxy/validate) runs on every node, over every repository:
// each node holds every repository's current head, so each can answer
// /status, /metrics and /vrps.json for the whole tree, and a node taking a
// lease over has been validating the state it serves all along. The
// holder's follower publishes through the validator (Config.Wrap), so that
// the gate judges a serial before the cache and Redis see it: a held
// serial never reaches Redis, and the other nodes keep the old head.
// Heads a node installs from Redis, or loads at start, are given to the
// validator (Config.Installed), which observes them and drops a hold
// judged against a state no longer served; a follower that stops
// (Config.Stopped) leaves its holds to the next holder, whose gate holds
// the same serial again when its follower offers it, since it compares it
// with the same state served.
//
// The holder's follower reports the serial its store holds back
// (follow.Stats.Holding), shared by Reporter with its other counters, so
// that every node shows the hold. An operator's release may reach any
// node: one that does not hold the lease writes a request naming that
// serial (its session and serial, as the holder reported it) to Redis
// (RequestRelease), with ReleaseTTL, and announces it; the holder polls at
// the announcement, and its gate asks Released at each attempt of a held
// serial, which takes the request. Naming the serial rather than a time
// (release what was held when the operator asked) compares no clocks of
// two nodes, survives a failover (the next holder holds the same serial,
// and honours the request when it first judges it), and never releases a
// serial the operator did not see.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// Config configures a Node. Redis is required; every other zero field
// takes the default in its comment.
type Config struct {
	// Node names this node in the leases (host name and process id). The
	// nodes of a fleet need different names.
	Node string
	// Redis is the shared store. The Node does not close it.
	Redis *redisstore.Store
	// Cache configures the node's cache; New adds the Redis tier after
	// its Tiers (memory, then the disk, then Redis).
	Cache cache.Config
	// Repos are the repositories to follow. The fleet sets Store, Start
	// and Blobs; Repo (URL by default) names the lease and the head.
	Repos []follow.Config
	// LeaseTTL is how long a lease lasts without renewal (30s): a bound on
	// the time a dead holder's repositories go unpolled.
	LeaseTTL time.Duration
	// RenewInterval is how often a holder renews its lease and the others
	// try to take it (LeaseTTL/3).
	RenewInterval time.Duration
	// ResyncInterval is how often a node that does not hold a lease
	// compares its head with Redis's, in case an announcement was lost,
	// and how often a holder checks that Redis has its head and every
	// blob the head needs (1m).
	ResyncInterval time.Duration
	// Wrap, if set, wraps the Store each follower publishes into (the
	// node's cache), each time one starts: the validation gate
	// (proxy/validate) judges a head before the cache and Redis get it.
	Wrap func(repo string, next follow.Store) follow.Store
	// Installed, if set, is told of every head the cache takes other
	// than from the node's followers: those Run loads from the tiers, and
	// those installed from Redis (the validator observes them).
	Installed func(repo string, h *follow.Head)
	// Stopped, if set, is told when the node's follower of repo stops
	// (the lease lost or given up, Redis back after polling alone, Run's
	// end): what that follower's Store held back is no longer this
	// node's to publish.
	Stopped func(repo string)
	// Compact are the keys of the repositories (among Repos) whose
	// compact publications (cache.CompactKey) the fleet shares: the
	// holder of a repository's lease publishes it into Redis, fenced by
	// the lease, and the others install it (compact.go). The validator
	// asks Publishes before each compact serial.
	Compact []string
	// Took, if set, is told when this node has taken repo's lease, once
	// it installed Redis's heads and started its follower, and for a
	// repository of Compact once it may publish (Publishes), which waits
	// for Redis's compact head to be installed: the validator then
	// publishes the compact serial the last holder may not have made. A
	// holder whose compact head stopped being Redis's (then installed
	// again) is told again.
	Took func(repo string)
	// Logger is the log (discarded).
	Logger *slog.Logger
}

// Node is one node of a fleet: its cache, and the lease, follower or
// subscription of each repository.
type Node struct {
	name     string
	rs       *redisstore.Store
	cache    *cache.Cache
	tier     *tier
	ttl      time.Duration
	renew    time.Duration
	resync   time.Duration
	log      *slog.Logger
	runners  map[string]*runner
	repos    []string // sorted keys of runners
	released bool     // release held leases when Run ends (tests clear it)
	share    share

	wrap      func(string, follow.Store) follow.Store
	installed func(string, *follow.Head)
	stopped   func(string)
	tookHook  func(string)
	loadKeys  []string // the heads Run loads: the repositories', then the compact ones
}

// New returns a Node for cfg, with its cache. It does not connect to Redis.
func New(cfg Config) (*Node, error) {
	if cfg.Redis == nil {
		return nil, errors.New("fleet: no redis store")
	}
	if cfg.LeaseTTL < 0 || cfg.RenewInterval < 0 || cfg.ResyncInterval < 0 {
		return nil, errors.New("fleet: negative lease ttl, renew or resync interval")
	}
	n := &Node{
		name:     cfg.Node,
		rs:       cfg.Redis,
		ttl:      cfg.LeaseTTL,
		renew:    cfg.RenewInterval,
		resync:   cfg.ResyncInterval,
		log:      cfg.Logger,
		runners:  make(map[string]*runner),
		released: true,

		wrap:      cfg.Wrap,
		installed: cfg.Installed,
		stopped:   cfg.Stopped,
		tookHook:  cfg.Took,
	}
	if n.name == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("fleet: node name: %w", err)
		}
		n.name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if n.ttl == 0 {
		n.ttl = 30 * time.Second
	}
	if n.renew == 0 {
		n.renew = n.ttl / 3
	}
	if n.renew >= n.ttl {
		return nil, fmt.Errorf("fleet: renew interval %v not below the lease ttl %v", n.renew, n.ttl)
	}
	if n.resync == 0 {
		n.resync = time.Minute
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("node", n.name)
	n.tier = &tier{rs: cfg.Redis, log: n.log, leases: make(map[string]redisstore.Lease), installing: make(map[string]*follow.Head)}
	cc := cfg.Cache
	cc.Tiers = append(slices.Clone(cc.Tiers), n.tier)
	c, err := cache.New(cc)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	n.cache = c
	n.tier.blob = c.Blob
	for _, fc := range cfg.Repos {
		if fc.URL == "" {
			c.Close()
			return nil, errors.New("fleet: repository without URL")
		}
		if fc.Repo == "" {
			fc.Repo = fc.URL
		}
		if n.runners[fc.Repo] != nil {
			c.Close()
			return nil, fmt.Errorf("fleet: repository %s twice", fc.Repo)
		}
		fc.Store, fc.Blobs = c, c.Blob
		n.runners[fc.Repo] = &runner{n: n, cfg: fc, repo: fc.Repo, poke: make(chan struct{}, 1), releasec: make(chan struct{}, 1),
			lostc: make(chan error, 1), started: make(chan struct{}), log: n.log.With("repo", fc.Repo)}
		n.repos = append(n.repos, fc.Repo)
	}
	slices.Sort(n.repos)
	n.loadKeys = slices.Clone(n.repos)
	for _, repo := range cfg.Compact {
		r := n.runners[repo]
		if r == nil {
			c.Close()
			return nil, fmt.Errorf("fleet: compact publication of %s, a repository not followed", repo)
		}
		r.compact = cache.CompactKey(repo)
		n.loadKeys = append(n.loadKeys, r.compact)
	}
	return n, nil
}

// Cache returns the node's cache, from which it serves.
func (n *Node) Cache() *cache.Cache { return n.cache }

// Name returns the node's name in the leases.
func (n *Node) Name() string { return n.name }

// Close releases the cache. Run must have returned.
func (n *Node) Close() { n.cache.Close() }

// DeleteHead removes from Redis the head of repo, a repository that left
// the configuration of the whole fleet, so that no node loads it again
// and Redis's GC collects its blobs (redisstore.Store.DeleteHead). The
// daemon calls it for each repository a reload removes, once no node of
// the fleet serves it any more: a node still following repo writes the
// head again. It refuses a repository this node follows. The head of the
// repository's compact publication (cache.CompactKey) goes too: left in
// Redis, its blobs would never be collected, and once evicted it would
// stop Redis's GC for every repository (redisstore.ErrHeadless), since no
// holder writes it again.
func (n *Node) DeleteHead(ctx context.Context, repo string) error {
	if n.runners[repo] != nil {
		return fmt.Errorf("fleet: delete head of %s: the node follows it", repo)
	}
	for _, key := range []string{repo, cache.CompactKey(repo)} {
		if err := n.rs.DeleteHead(ctx, key); err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
	}
	return nil
}

// Run loads the heads the cache's tiers hold for its repositories, then
// follows every
// repository until ctx ends; it also sweeps the cache and collects Redis's
// garbage (redisstore.Store.Run). On the way out it stops its followers
// and releases its leases, so that another node takes over at once. It
// returns ctx's error.
func (n *Node) Run(ctx context.Context) error {
	// Only the configured repositories: Redis may hold heads of
	// repositories removed from the configuration, or of other nodes'.
	if err := n.cache.LoadRepos(ctx, n.loadKeys); err != nil {
		n.log.Warn("fleet: load heads", "err", err)
	}
	if n.installed != nil {
		for _, repo := range n.repos {
			if h := n.cache.Head(repo); h != nil {
				n.installed(repo, h)
			}
		}
	}
	var wg sync.WaitGroup
	for _, r := range n.runners {
		wg.Go(func() { r.run(ctx) })
	}
	wg.Go(func() { n.subscribe(ctx, n.rs.Subscribe, func(r *runner) chan struct{} { return r.poke }) })
	wg.Go(func() { n.subscribe(ctx, n.rs.SubscribeReleases, func(r *runner) chan struct{} { return r.releasec }) })
	wg.Go(func() { n.beat(ctx) })
	wg.Go(func() { n.cache.Run(ctx) })
	wg.Go(func() { n.rs.Run(ctx) })
	wg.Wait()
	return ctx.Err()
}

// subscribe passes Redis's announcements (of new heads, or of release
// requests) to the repositories' runners, on the channel of the runner
// that to returns, subscribing again after an error.
func (n *Node) subscribe(ctx context.Context, sub func(context.Context) (<-chan string, error), to func(*runner) chan struct{}) {
	for {
		ch, err := sub(ctx)
		if err == nil {
			for repo := range ch {
				r := n.runners[repo]
				if cr, ok := n.compactRunner(repo); ok {
					r = cr // its install takes the compact head too
				}
				if r != nil {
					select {
					case to(r) <- struct{}{}:
					default: // one is pending already
					}
				}
			}
		} else {
			n.log.Warn("fleet: subscribe", "err", err)
		}
		t := time.NewTimer(n.renew)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Role is what a node does for a repository.
type Role int

const (
	// Watcher: another node holds the lease; this one installs the
	// heads it writes to Redis.
	Watcher Role = iota
	// Holder: this node holds the lease and polls the origin.
	Holder
	// Solo: Redis is unreachable; this node polls the origin itself.
	Solo
)

func (r Role) String() string {
	switch r {
	case Watcher:
		return "watcher"
	case Holder:
		return "holder"
	case Solo:
		return "solo"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// RepoStats says what a node does and did for one repository.
type RepoStats struct {
	Repo  string
	Role  Role
	Token uint64 // the lease's fencing token while Holder
	// Leases counts the times this node took the lease.
	Leases uint64
	// Syncs counts the notification fetches of this node's followers.
	Syncs uint64
	// Installed counts heads taken from Redis; InstallErrors those that
	// could not be installed (a blob missing or damaged).
	Installed, InstallErrors uint64
	// ColdInstalls counts the installed heads whose new blobs went to the
	// state directory alone and were read back after the switch (adopt).
	ColdInstalls uint64
	// CompactInstalled counts the repository's compact heads taken from
	// Redis (Config.Compact).
	CompactInstalled uint64
	// CatchupShared and CatchupOrigin count the requests for a file the
	// node's head did not name yet that Catchup found in Redis's head, or
	// in the node's own head after polling the origin.
	CatchupShared, CatchupOrigin uint64
	LastErr                      string
}

// Stats counts what a node does and did.
type Stats struct {
	Node  string
	Repos []RepoStats
	// RedisDown: the last Redis call failed.
	RedisDown bool
	// SumErrors counts blobs read from Redis that did not match their
	// hash; Repaired the blobs a holder put again because Redis had lost
	// them; HeadWrites the heads written to Redis.
	SumErrors, Repaired, HeadWrites uint64
	Cache                           cache.Stats
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	st := Stats{
		Node:       n.name,
		RedisDown:  n.tier.down.Load(),
		SumErrors:  n.tier.sumErrors.Load(),
		Repaired:   n.tier.repaired.Load(),
		HeadWrites: n.tier.writes.Load(),
		Cache:      n.cache.Stats(),
	}
	for _, repo := range n.repos {
		st.Repos = append(st.Repos, n.runners[repo].stats())
	}
	return st
}
