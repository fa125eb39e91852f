package fleet

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestCatchupInstalledMeanwhile forces the interleaving behind a 404 seen
// in TestLoadBalancer: a relying party reads the holder's notification of
// a new serial and asks a watcher for its snapshot; the watcher's server
// looks at the cache's head (the older serial: no such file) and, before
// it asks Catchup, the watcher installs the new head from Redis (the
// announcement of that serial arrives at the same moment as the relying
// parties). Catchup then sees a local head that is not behind the name
// and must still give the head that names it, not nil (a 404 for a file
// the fleet's notification names, invariant 8). Once with the very serial
// installed, once with a later one, in which the file is retained.
//
// The watcher's runner is stopped, so that the install happens exactly
// there: the test's Catchup hook does what the runner's install does
// (adopt Redis's head).
func TestCatchupInstalledMeanwhile(t *testing.T) {
	e := newEnv(t)
	a, b := e.start("node-a"), e.start("node-b")
	holder := e.oneHolder()
	e.waitSerial(e.repo.Info().Serial)
	w := a
	if holder == a {
		w = b
	}
	w.kill() // from here on its head changes only by the hook below
	r := w.runners[e.url]

	var install atomic.Pointer[follow.Head] // installed by the hook, then cleared
	srv, err := proxy.New(proxy.Config{
		Repos: []proxy.Repo{{Name: "r", Origin: e.url, Key: e.url, Mode: proxy.ModeReverse,
			Base: "https://" + lbHost + "/rrdp/", Hosts: []string{lbHost}}},
		Cache: w.Cache(),
		Catchup: func(ctx context.Context, key, path string) (*follow.Head, error) {
			if h := install.Swap(nil); h != nil {
				if err := r.adopt(ctx, e.url, h); err != nil {
					t.Errorf("install serial %d: %v", h.Serial, err)
				}
			}
			return w.Catchup(ctx, key, path)
		},
		PullWait: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	lb := &lbNode{node: w, addr: ln.Addr().String(), srv: srv}
	t.Cleanup(lb.shutdown)
	bal := &balancer{t: t, client: &http.Client{Timeout: 30 * time.Second}}

	// redisHead waits until Redis's head is at serial and returns it.
	redisHead := func(serial uint64) *follow.Head {
		t.Helper()
		var h *follow.Head
		e.waitFor("redis's head at the new serial", func() bool {
			var err error
			h, err = w.rs.Head(context.Background(), e.url)
			return err == nil && h != nil && h.Serial == serial
		})
		return h
	}
	snapshot := func(h *follow.Head) follow.File {
		t.Helper()
		for _, f := range h.Files {
			if f.Kind == rrdpxml.KindSnapshot && f.Format == irpki.FormatXML && f.Serial == h.Serial && !f.Gzip && f.Expires.IsZero() {
				return f
			}
		}
		t.Fatalf("no snapshot.xml in the head of serial %d", h.Serial)
		return follow.File{}
	}

	for _, tc := range []struct {
		name  string
		later int // serials the installed head is past the one asked for
	}{
		{"the serial", 0},
		{"a later serial, the file retained", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := w.Cache().Head(e.url)
			asked := redisHead(e.advance(1))
			f := snapshot(asked)
			h := asked
			if tc.later > 0 {
				h = redisHead(e.advance(tc.later))
			}
			if names(before, f.Path) {
				t.Fatalf("the watcher's head of serial %d names %s already", before.Serial, f.Path)
			}
			install.Store(h)
			status, body, err := bal.get(lb, "/rrdp/"+f.Path)
			if err != nil {
				t.Fatal(err)
			}
			if install.Load() != nil {
				t.Fatalf("the server did not ask Catchup (head of serial %d)", w.Cache().Head(e.url).Serial)
			}
			if status != http.StatusOK || sha256.Sum256(body) != f.Sum {
				t.Errorf("snapshot of serial %d with serial %d installed meanwhile: got status %d, %d bytes; want 200 and the notification's hash",
					asked.Serial, h.Serial, status, len(body))
			}
		})
	}
}

// TestCatchupDeposedWhileWaiting: a holder whose follower is not running
// (stopped for a moment, or never to start again) that becomes a watcher
// while a catch-up waits for it stops waiting and looks in Redis, where
// the new holder publishes: before, the request waited for a follower
// that a watcher never starts, for the whole request's deadline, and then
// answered 404.
func TestCatchupDeposedWhileWaiting(t *testing.T) {
	e := newEnv(t)
	a, b := e.start("node-a"), e.start("node-b")
	holder := e.oneHolder()
	e.waitSerial(e.repo.Info().Serial)
	w := a
	if holder == a {
		w = b
	}
	w.kill() // its runner no longer steps: roles change only here
	r := w.runners[e.url]
	r.setRole(Holder, 0)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	var f *follow.Follower
	go func() {
		defer close(done)
		f, _ = r.follow(ctx)
	}()
	r.setRole(Watcher, 0)
	<-done
	if f != nil {
		t.Fatal("follow gave a follower to a watcher")
	}
	if ctx.Err() != nil {
		t.Fatalf("follow returned only when the request's context ended (%v), want as soon as the node is a watcher", ctx.Err())
	}
}
