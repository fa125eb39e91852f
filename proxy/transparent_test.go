package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// source is where a relying party sends one request: the origin or the
// proxy, both reached by the URI's path.
type source int

const (
	fromOrigin source = iota
	fromProxy
)

func (s source) String() string { return [...]string{"origin", "proxy"}[s] }

// transparentEnv is env with a transparent follower (reverse mode)
// publishing into the server's cache, and a client of the origin.
type transparentEnv struct {
	*env
	follower *follow.Follower
	origin   *http.Client
	// served counts the files fetched, by source and kind.
	served map[string]int
	// clock is the server's time, in Unix nanoseconds.
	clock atomic.Int64
}

// newTransparentEnv is newEnv with the transparent follower and a server
// of its own in front of the cache, on the clock e.clock: the puller
// fetches the origin's notification again for a path it does not name
// only once a second has passed since its last fetch, and the test moves
// that clock rather than sleeping.
func newTransparentEnv(t *testing.T) *transparentEnv {
	e := newEnv(t, ModeReverse)
	f, err := follow.New(follow.Config{URL: e.notif, Client: e.client, Store: e.cache, Base: e.base, Transparent: true})
	if err != nil {
		t.Fatal(err)
	}
	te := &transparentEnv{env: e, follower: f, served: map[string]int{}}
	te.clock.Store(e.now.UnixNano())
	srv, err := New(Config{
		Repos:  []Repo{{Name: "test", Origin: e.notif, Mode: ModeReverse, Base: e.base, Stats: f.Stats}},
		Cache:  e.cache,
		Client: e.client,
		Now:    func() time.Time { return time.Unix(0, te.clock.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", e.addr) // the Base names e.addr
	if err == nil {
		t.Fatalf("%s is free: the env's server is not running", e.addr)
	}
	if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	// Requests go to the new server, under the Host the Base names.
	e.url = "http://" + ln.Addr().String()
	tc := e.pki.ClientTLS()
	te.origin = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableCompression: true}}
	t.Cleanup(te.origin.CloseIdleConnections)
	return te
}

func (e *transparentEnv) syncProxy() {
	e.t.Helper()
	if _, err := e.follower.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// fetch gets the file at uri's path from src; anything but a 200 fails
// the test.
func (e *transparentEnv) fetch(src source, uri string) []byte {
	e.t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		e.t.Fatal(err)
	}
	if src == fromProxy {
		resp, b := e.get("GET", u.Path, "Host", e.addr)
		if resp.StatusCode != 200 {
			e.t.Fatalf("proxy: GET %s: %d %s", u.Path, resp.StatusCode, b)
		}
		return b
	}
	resp, err := e.origin.Get(e.env.origin.URL() + u.Path[1:])
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("origin: GET %s: %d %v", u.Path, resp.StatusCode, err)
	}
	return b
}

// relyingParty is an RRDP client that keeps its session and serial
// (deltas when it can, RFC 8182 section 3.4.1) and sends each request
// where it is told.
type relyingParty struct {
	name    string
	every   int // syncs at every round (0) or every so many
	session string
	serial  uint64
}

// sync reads the notification from nsrc and the files it names from
// fsrc, checking every file against the hash in the notification.
func (r *relyingParty) sync(e *transparentEnv, nsrc, fsrc source) {
	e.t.Helper()
	nb := e.fetch(nsrc, e.notif)
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(nb), rrdpxml.Limits{})
	if err != nil {
		e.t.Fatalf("%s: notification from the %s: %v", r.name, nsrc, err)
	}
	check := func(what, uri string, want [32]byte) {
		e.t.Helper()
		b := e.fetch(fsrc, uri)
		if sha256.Sum256(b) != want {
			e.t.Fatalf("%s: %s %s from the %s (notification of serial %d from the %s): hash mismatch", r.name, what, uri, fsrc, n.Serial, nsrc)
		}
		e.served[fsrc.String()+" "+what]++
	}
	if deltas, ok := n.DeltasFrom(r.session, r.serial); ok {
		for _, d := range deltas {
			check("delta", d.URI, d.Hash)
		}
	} else {
		check("snapshot", n.Snapshot.URI, n.Snapshot.Hash)
	}
	r.session, r.serial = n.SessionID, n.Serial
}

// TestTransparentAlternation: relying parties that switch between the
// origin and a transparent proxy at every request (notification from
// one, snapshot or deltas from the other, both ways), while the proxy
// lags a serial behind the origin or is level with it, over seven serials
// and a session reset, never get a 404 or a hash mismatch; once the proxy
// has synced, it serves the origin's notification.xml, snapshot and
// deltas byte for byte.
func TestTransparentAlternation(t *testing.T) {
	e := newTransparentEnv(t)
	e.syncProxy()
	rps := []*relyingParty{{name: "rp0"}, {name: "rp1"}, {name: "snapshot-only"}, {name: "slow", every: 3}}
	turn := 0
	round := func(what string) {
		t.Helper()
		for i, r := range rps {
			if r.every > 0 && turn%r.every != 0 {
				continue
			}
			nsrc := source((turn + i) % 2)
			if r.name == "snapshot-only" {
				r.session = ""
			}
			r.sync(e, nsrc, 1-nsrc)
		}
		turn++
	}
	same := func(step string) {
		t.Helper()
		po, pp := e.fetch(fromOrigin, e.notif), e.fetch(fromProxy, e.notif)
		if !bytes.Equal(po, pp) {
			t.Fatalf("%s: the proxy's notification.xml differs from the origin's", step)
		}
		n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(po), rrdpxml.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		uris := []string{n.Snapshot.URI}
		for _, d := range n.Deltas {
			uris = append(uris, d.URI)
		}
		for _, u := range uris {
			if !bytes.Equal(e.fetch(fromOrigin, u), e.fetch(fromProxy, u)) {
				t.Fatalf("%s: the proxy's %s differs from the origin's", step, u)
			}
		}
	}
	same("serial 1")
	round("serial 1")
	for i := range 8 {
		step := fmt.Sprintf("step %d", i)
		e.now = e.now.Add(time.Minute)
		e.clock.Store(e.now.UnixNano())
		var err error
		if i == 5 {
			err = e.repo.ResetSession(e.now)
		} else {
			err = e.repo.Advance(e.now, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The origin is ahead: files of its new serial come through the
		// proxy's pull-through, those of the proxy's from the origin.
		round(step + ", proxy behind")
		round(step + ", proxy behind")
		e.syncProxy()
		same(step)
		round(step + ", level")
	}
	for _, k := range []string{"origin snapshot", "proxy snapshot", "origin delta", "proxy delta"} {
		if e.served[k] == 0 {
			t.Errorf("no %s was fetched: the alternation did not cover it (%v)", k, e.served)
		}
	}
	if s := e.follower.Stats(); s.Errors != 0 || s.Snapshots != 2 {
		t.Errorf("follower: %+v, want no error and 2 snapshots (the first, the session reset)", s)
	}
	t.Logf("files fetched: %v", e.served)
}
