package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// Timing of the test fleets: short, so that hand-overs happen within the
// test; the deadlines below are generous multiples.
const (
	testTTL      = 3 * time.Second
	testRenew    = 250 * time.Millisecond
	testResync   = 500 * time.Millisecond
	testInterval = 200 * time.Millisecond
	deadline     = 30 * time.Second
)

// env is a fleet under test: a real redis-server, a real https origin
// serving a synthetic repository, and nodes in this process.
type env struct {
	t      *testing.T
	srv    *redistest.Server
	origin *rp.Origin
	repo   *repotest.Repo
	now    time.Time
	client *upstream.Client
	url    string
	// keys, if set, are the names of the repositories each node follows,
	// all at url; by default one, url.
	keys []string
	// fragmentMin is the nodes' follow.Config.FragmentMin (1: every
	// snapshot composite).
	fragmentMin int64
	// dir is the origin's directory, which holds the repository.
	dir string
	// prepare, if set, completes each node's Config before New; it
	// returns what is told of the Node once made, which returns what
	// runs beside the Node's Run, until the node stops.
	prepare func(name string, cfg *Config) func(*Node) func(context.Context)

	mu    sync.Mutex // guards nodes: the background check reads them
	nodes []*node

	checkMu sync.Mutex // one invariant check at a time
}

// list returns the nodes started so far.
func (e *env) list() []*node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.nodes)
}

// node is one fleet node and what stops it.
type node struct {
	*Node
	rs     *redisstore.Store
	cancel context.CancelFunc
	done   chan struct{}
	closed bool // its cache is closed; guarded by env.checkMu
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, srv: redistest.Start(t)}
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e.dir = dir
	e.origin, err = rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.origin.Close() })
	e.now = time.Now().UTC().Truncate(time.Second)
	e.repo, err = repotest.Create(dir, repotest.Config{
		Profile: repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, Seed: 5, BaseURL: e.origin.URL()}, e.now, repotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	e.client, err = upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	e.url = e.origin.URL() + "rrdp/notification.xml"
	return e
}

// start starts a node with its own Redis client and state directory.
func (e *env) start(name string) *node {
	e.t.Helper()
	rs, err := redisstore.New(redisstore.Config{URL: e.srv.URL(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	disk, err := diskstore.Open(diskstore.Config{Dir: e.t.TempDir()})
	if err != nil {
		e.t.Fatal(err)
	}
	keys := e.keys
	if keys == nil {
		keys = []string{e.url}
	}
	var repos []follow.Config
	for _, k := range keys {
		repos = append(repos, follow.Config{URL: e.url, Repo: k, Client: e.client, Base: "https://edge.example.net/rrdp/",
			Interval: testInterval, MaxBackoff: time.Second, Seed: uint64(len(e.list())), FragmentMin: e.fragmentMin})
	}
	cfg := Config{
		Node:           name,
		Redis:          rs,
		Cache:          cache.Config{Tiers: []cache.Tier{disk}},
		Repos:          repos,
		Logger:         logger(),
		LeaseTTL:       testTTL,
		RenewInterval:  testRenew,
		ResyncInterval: testResync,
	}
	var made func(*Node) func(context.Context)
	if e.prepare != nil {
		made = e.prepare(name, &cfg)
	}
	n, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	var beside func(context.Context)
	if made != nil {
		beside = made(n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd := &node{Node: n, rs: rs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(nd.done)
		var wg sync.WaitGroup
		if beside != nil {
			wg.Go(func() { beside(ctx) })
		}
		n.Run(ctx)
		wg.Wait()
	}()
	e.t.Cleanup(func() {
		nd.kill()
		// Not while the background check reads the node's cache.
		e.checkMu.Lock()
		nd.closed = true
		n.Close()
		e.checkMu.Unlock()
		rs.Close()
	})
	e.mu.Lock()
	e.nodes = append(e.nodes, nd)
	e.mu.Unlock()
	return nd
}

// kill stops the node without releasing its leases, as if it died.
func (nd *node) kill() {
	nd.released = false
	nd.cancel()
	<-nd.done
}

func (nd *node) repoStats() RepoStats { return nd.Stats().Repos[0] }

// alive returns the nodes still running.
func (e *env) alive() []*node {
	var live []*node
	for _, nd := range e.list() {
		select {
		case <-nd.done:
		default:
			live = append(live, nd)
		}
	}
	return live
}

// waitFor polls cond until it holds, checking the fleet's invariant at
// each round, and fails the test after deadline.
func (e *env) waitFor(what string, cond func() bool) time.Duration {
	e.t.Helper()
	start := time.Now()
	for !cond() {
		e.check()
		if time.Since(start) > deadline {
			e.t.Fatalf("%s: not within %v", what, deadline)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	e.check()
	return time.Since(start)
}

// waitSerial waits until every running node serves serial.
func (e *env) waitSerial(serial uint64) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("every node at serial %d", serial), func() bool {
		for _, nd := range e.alive() {
			if h := nd.Cache().Head(e.url); h == nil || h.Serial != serial {
				return false
			}
		}
		return true
	})
}

// check asserts the invariant: every node serves a head whose blobs it
// can read, with the right content, or no head.
func (e *env) check() {
	e.t.Helper()
	e.checkMu.Lock()
	defer e.checkMu.Unlock()
	ctx := context.Background()
	for _, nd := range e.list() {
		if nd.closed {
			continue
		}
		c := nd.Cache()
		h := c.Head(e.url)
		if h == nil {
			continue
		}
		now := time.Now()
		for _, f := range h.Files {
			if !f.Expires.IsZero() && !now.Before(f.Expires) {
				continue
			}
			b, err := cache.ReadFile(ctx, &f, c.Blob)
			if err != nil || int64(len(b)) != f.Size || !f.Gzip && sha256.Sum256(b) != f.Sum || !f.Composite() && sha256.Sum256(b) != f.Sum {
				e.t.Errorf("%s serves serial %d but file %s: got %d bytes, %v; want %d bytes of sum %x",
					nd.Name(), h.Serial, f.Path, len(b), err, f.Size, f.Sum[:8])
			}
		}
		if !bytes.Contains(h.NotificationXML, []byte(fmt.Sprintf(`serial="%d"`, h.Serial))) {
			e.t.Errorf("%s: notification of serial %d does not say it", nd.Name(), h.Serial)
		}
	}
}

// watch runs check in the background until the test ends, so that a
// head with unreadable blobs is caught between the steps too.
func (e *env) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.check()
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
}

// holders returns the running nodes holding the lease, and the solo ones.
func (e *env) roles() (holders []*node, solo int) {
	for _, nd := range e.alive() {
		switch nd.repoStats().Role {
		case Holder:
			holders = append(holders, nd)
		case Solo:
			solo++
		}
	}
	return holders, solo
}

// oneHolder waits until exactly one running node holds the lease and none
// polls alone, and returns it.
func (e *env) oneHolder() *node {
	e.t.Helper()
	var h *node
	e.waitFor("one lease holder", func() bool {
		holders, solo := e.roles()
		if len(holders) != 1 || solo != 0 {
			return false
		}
		h = holders[0]
		return true
	})
	return h
}

// advance makes the origin publish n more serials.
func (e *env) advance(n int) uint64 {
	e.t.Helper()
	e.now = e.now.Add(time.Minute)
	if err := e.repo.Advance(e.now, n); err != nil {
		e.t.Fatal(err)
	}
	return e.repo.Info().Serial
}

// fetches counts the origin's answers by kind of file: "notification",
// "snapshot", "delta" and "other", and by path.
func (e *env) fetches() (kinds map[string]int, paths map[string]int) {
	e.t.Helper()
	reqs, err := e.origin.Requests()
	if err != nil {
		e.t.Fatal(err)
	}
	kinds, paths = make(map[string]int), make(map[string]int)
	for _, r := range reqs {
		k := "other"
		for _, name := range []string{"notification", "snapshot", "delta"} {
			if strings.Contains(r.Path, name) {
				k = name
			}
		}
		kinds[k]++
		if k != "notification" {
			paths[r.Path]++
		}
	}
	return kinds, paths
}

// syncs returns each running node's notification fetches.
func (e *env) syncs() map[string]uint64 {
	m := make(map[string]uint64)
	for _, nd := range e.alive() {
		m[nd.Name()] = nd.repoStats().Syncs
	}
	return m
}

// logger returns the nodes' log: discarded, or stderr when FLEET_TEST_LOG
// is set.
func logger() *slog.Logger {
	if os.Getenv("FLEET_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
