package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// node is one rrdp-proxy as the serve command runs it: a follower polling
// its origin in the background, publishing into a cache, and the server
// answering from that cache over TLS, in reverse-proxy mode.
type node struct {
	t        *testing.T
	name     string
	follower *follow.Follower
	srv      *proxy.Server
	base     string // the Base its files are served under
	addr     string // 127.0.0.1:port, for operator requests
	client   *http.Client
}

// nodeConfig configures startNode.
type nodeConfig struct {
	name   string
	follow string // the notification to follow
	// public is the node's https URL (https://localhost:PORT/); lns are
	// its listeners (rp.Listen with that port).
	public string
	lns    []net.Listener
	pki    *rp.PKI
}

// startNode starts a node; t.Cleanup stops it.
func startNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	ca, err := os.ReadFile(cfg.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	base, err := proxy.BaseURI(proxy.ModeReverse, cfg.follow, cfg.public)
	if err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	f, err := follow.New(follow.Config{
		URL: cfg.follow, Client: client, Store: c, Base: base,
		Interval: interval, MaxBackoff: time.Second, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Repos:    []proxy.Repo{{Name: cfg.name, Origin: cfg.follow, Base: base, Interval: interval, Stats: f.Stats}},
		Cache:    c,
		Client:   client,
		CertFile: cfg.pki.CertFile, KeyFile: cfg.pki.KeyFile,
		Node: cfg.name,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: cfg.name, follower: f, srv: srv, base: base, addr: cfg.lns[0].Addr().String()}
	tlsConf := cfg.pki.ClientTLS()
	tlsConf.ServerName = "localhost"
	n.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	t.Cleanup(n.client.CloseIdleConnections)

	served := make(chan error, len(cfg.lns))
	for _, ln := range cfg.lns {
		go func() { served <- srv.ServeTLS(ln) }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("%s: %v", cfg.name, err)
		}
		for range cfg.lns {
			if err := <-served; err != nil {
				t.Errorf("%s: %v", cfg.name, err)
			}
		}
	})
	return n
}

// url returns the public URL of a file of the node's repository.
func (n *node) url(name string) string { return n.base + name }

// waitHead polls until the node serves serial of the upstream session
// (follow.Head.Session), for at most a minute, and returns the head.
func (n *node) waitHead(session string, serial uint64) *follow.Head {
	n.t.Helper()
	return n.waitHeadFor(session, serial, time.Minute)
}

// waitHeadFor is waitHead with a wait of d.
func (n *node) waitHeadFor(session string, serial uint64, d time.Duration) *follow.Head {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for {
		h := n.follower.Head()
		if h != nil && h.Session == session && h.Serial == serial {
			return h
		}
		if time.Now().After(deadline) {
			got := "nothing"
			if h != nil {
				got = fmt.Sprintf("session %s serial %d", h.Session, h.Serial)
			}
			n.t.Fatalf("%s: serves %s after %v, want session %s serial %d; follower: %+v", n.name, got, d, session, serial, n.follower.Stats())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// requests returns the node's rrdp_proxy_requests_total for a kind
// (notification, snapshot, delta), format (xml, bin) and status, read
// from its /metrics.
func (n *node) requests(kind, format string, code int) int {
	n.t.Helper()
	resp, err := n.client.Get("https://" + n.addr + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		n.t.Fatalf("%s: /metrics: status %d", n.name, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		n.t.Fatal(err)
	}
	want := fmt.Sprintf(`rrdp_proxy_requests_total{repo=%q,kind=%q,format=%q,code="%d"} `, n.name, kind, format, code)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				n.t.Fatalf("%s: /metrics: %q: %v", n.name, sc.Text(), err)
			}
			return int(x)
		}
	}
	return 0 // a counter never incremented is not written
}
