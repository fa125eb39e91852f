package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// lbHost is the public name of the fleet: the Host of every request, the
// host of the URIs its notifications name.
const lbHost = "edge.example.net"

// lbNode is a fleet node with the HTTP server in front of its cache, as
// rrdp-proxy serve composes them.
type lbNode struct {
	*node
	addr string
	srv  *proxy.Server
}

// startLB starts a fleet node and its server on a loopback port.
func (e *env) startLB(name string) *lbNode {
	e.t.Helper()
	nd := e.start(name)
	srv, err := proxy.New(proxy.Config{
		Repos: []proxy.Repo{{Name: "r", Origin: e.url, Key: e.url, Mode: proxy.ModeReverse,
			Base: "https://" + lbHost + "/rrdp/", Hosts: []string{lbHost}}},
		Cache:    nd.Cache(),
		Catchup:  nd.Catchup,
		PullWait: 20 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go srv.Serve(ln)
	ln2 := &lbNode{node: nd, addr: ln.Addr().String(), srv: srv}
	e.t.Cleanup(ln2.shutdown)
	return ln2
}

func (n *lbNode) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.srv.Shutdown(ctx)
}

// balancer sends each request to one of its nodes, as a load balancer
// would, and tallies what relying parties would have seen.
type balancer struct {
	t      *testing.T
	client *http.Client

	mu    sync.Mutex
	nodes []*lbNode
	next  int

	iterations, notFound, serverErrors, mismatches, unreachable atomic.Int64
	firstErr                                                    atomic.Pointer[string]
}

func (b *balancer) set(nodes []*lbNode) {
	b.mu.Lock()
	b.nodes = nodes
	b.mu.Unlock()
}

// pick returns two different nodes, or the one there is.
func (b *balancer) pick() (*lbNode, *lbNode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	a := b.nodes[b.next%len(b.nodes)]
	c := b.nodes[(b.next+1)%len(b.nodes)]
	return a, c
}

func (b *balancer) fail(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.firstErr.CompareAndSwap(nil, &s)
}

// get fetches path from node n with the fleet's Host.
func (b *balancer) get(n *lbNode, path string) (int, []byte, error) {
	req, err := http.NewRequest("GET", "http://"+n.addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = lbHost
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// iterate is one relying party's sync: the notification from one node,
// the snapshot and the newest delta it names from another, both ways.
func (b *balancer) iterate() {
	from, to := b.pick()
	if b.iterations.Load()%2 == 1 {
		from, to = to, from
	}
	b.iterations.Add(1)
	status, body, err := b.get(from, "/rrdp/notification.xml")
	if err != nil {
		b.unreachable.Add(1)
		return
	}
	if status == http.StatusServiceUnavailable {
		return // no head yet: an RP retries
	}
	if status != 200 {
		b.count(status, "notification", from)
		return
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(body), rrdpxml.Limits{})
	if err != nil {
		b.mismatches.Add(1)
		b.fail("notification from %s: %v", from.Name(), err)
		return
	}
	refs := []rrdpxml.SnapshotRef{n.Snapshot}
	if len(n.Deltas) > 0 {
		d := n.Deltas[len(n.Deltas)-1]
		refs = append(refs, rrdpxml.SnapshotRef{URI: d.URI, Hash: d.Hash})
	}
	for _, ref := range refs {
		u, err := url.Parse(ref.URI)
		if err != nil || u.Host != lbHost {
			b.mismatches.Add(1)
			b.fail("notification from %s names %s", from.Name(), ref.URI)
			continue
		}
		status, body, err := b.get(to, u.Path)
		switch {
		case err != nil:
			b.unreachable.Add(1)
		case status != 200:
			b.count(status, fmt.Sprintf("%s of serial %d (notification from %s)", u.Path, n.Serial, from.Name()), to)
		case sha256.Sum256(body) != ref.Hash:
			b.mismatches.Add(1)
			b.fail("%s from %s: hash %x, the notification from %s says %x", u.Path, to.Name(), sha256.Sum256(body), from.Name(), ref.Hash)
		}
	}
}

func (b *balancer) count(status int, what string, n *lbNode) {
	switch {
	case status == 404:
		b.notFound.Add(1)
	case status >= 500:
		b.serverErrors.Add(1)
	default:
		b.mismatches.Add(1)
	}
	b.fail("%s from %s: status %d", what, n.Name(), status)
}

// run iterates until ctx ends, with clients relying parties at once.
func (b *balancer) run(ctx context.Context, clients int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				b.iterate()
			}
		})
	}
	return &wg
}

// TestLoadBalancer: three nodes behind a load balancer that sends every
// request of a relying party to another node than the last; the origin
// publishes 60 serials, with Redis up, then killed, then back empty, then
// with the lease holder killed. No request may get a 404, a 5xx or bytes
// other than the notification's hash.
func TestLoadBalancer(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of serials")
	}
	e := newEnv(t)
	e.watch()
	nodes := []*lbNode{e.startLB("node-a"), e.startLB("node-b"), e.startLB("node-c")}
	e.oneHolder()
	e.waitSerial(e.repo.Info().Serial)
	b := &balancer{t: t, client: &http.Client{Timeout: 30 * time.Second}}
	b.set(nodes)
	ctx, cancel := context.WithCancel(context.Background())
	wg := b.run(ctx, 4)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	defer stop()

	const perPhase = 15
	serials := func(phase string) {
		for range perPhase {
			e.advance(1)
			// A serial about every second: the nodes poll every 200ms.
			time.Sleep(time.Second)
		}
		t.Logf("%s: %d iterations so far, %d 404s, %d 5xx, %d mismatches, %d unreachable",
			phase, b.iterations.Load(), b.notFound.Load(), b.serverErrors.Load(), b.mismatches.Load(), b.unreachable.Load())
	}
	serials("redis up")

	e.srv.Stop()
	serials("redis down")

	e.srv.Restart()
	e.waitFor("one holder after redis came back empty", func() bool {
		holders, solo := e.roles()
		return len(holders) == 1 && solo == 0
	})
	serials("redis back empty")

	holder := e.oneHolder()
	var rest []*lbNode
	for _, n := range nodes {
		if n.node != holder {
			rest = append(rest, n)
		} else {
			defer n.shutdown()
		}
	}
	// The load balancer takes the dead node out; requests under way on
	// it are the balancer's to retry, not counted.
	b.set(rest)
	holder.kill()
	serials("holder killed")
	final := e.repo.Info().Serial
	e.waitSerial(final)
	stop()

	kinds, _ := e.fetches()
	t.Logf("%d iterations over %d serials; origin answered %d notification, %d snapshot, %d delta requests",
		b.iterations.Load(), 4*perPhase, kinds["notification"], kinds["snapshot"], kinds["delta"])
	for _, n := range nodes {
		st := n.repoStats()
		t.Logf("%s: role %v, catch-ups from redis %d, from the origin %d, installed %d", n.Name(), st.Role, st.CatchupShared, st.CatchupOrigin, st.Installed)
	}
	if b.iterations.Load() < 100 {
		t.Errorf("iterations: got %d, want at least 100", b.iterations.Load())
	}
	if nf, se, mm := b.notFound.Load(), b.serverErrors.Load(), b.mismatches.Load(); nf+se+mm != 0 {
		t.Errorf("got %d 404s, %d 5xx and %d mismatches, want none; first: %s", nf, se, mm, *b.firstErr.Load())
	}
}

// TestCatchupWatcherMadeUpName: a watcher asked for a name of a later
// serial that Redis's head does not name answers at once (nothing to
// poll: the holder has not published it), instead of holding the request
// until its deadline; the holder polls its origin once and finds nothing.
func TestCatchupWatcherMadeUpName(t *testing.T) {
	e := newEnv(t)
	a, b := e.start("node-a"), e.start("node-b")
	holder := e.oneHolder()
	e.waitSerial(e.repo.Info().Serial)
	watcher := a
	if holder == a {
		watcher = b
	}
	h := watcher.Cache().Head(e.url)
	xs, _ := h.Sessions()
	name := fmt.Sprintf("%s/%d/0123456789abcdef/snapshot.xml", xs, h.Serial+1000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []*node{watcher, holder} {
		got, err := n.Catchup(ctx, e.url, name)
		if got != nil || err != nil {
			t.Errorf("%s: a made-up name: got %v, %v; want nil, nil", n.Name(), got, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: Catchup waited out its 30s context", n.Name())
		}
	}
	if got, _ := watcher.Catchup(ctx, e.url, "not/a/name"); got != nil {
		t.Errorf("a name outside the layout: got a head")
	}
}
