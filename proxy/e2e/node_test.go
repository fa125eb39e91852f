package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// node is one rrdp-proxy in reverse-proxy mode, serving one repository
// over TLS: composed in this process from the packages (startNode) or the
// rrdp-proxy serve command (startServe). The tests see it from outside:
// its notifications, /metrics and /status.json.
type node struct {
	t      *testing.T
	name   string
	base   string // the Base its files are served under
	addr   string // 127.0.0.1:port, for operator requests
	client *http.Client
	// follower is the in-process node's follower; nil for a process.
	follower *follow.Follower
}

// nodeConfig configures a node.
type nodeConfig struct {
	name   string
	follow string // the notification to follow
	// public is the node's https URL (https://localhost:PORT/); lns are
	// its listeners (rp.Listen with that port).
	public string
	lns    []net.Listener
	pki    *rp.PKI
	// regenerate makes a node composed by startNode serve XML of its own
	// (regenerated, as in mirror mode) instead of the origin's: serve
	// follows reverse-mode repositories transparently, so that a node's
	// notification.xml names the origin's URIs, which only works when the
	// origin is named by the node's public URL (fetch_from).
	regenerate bool
}

// starter starts a node; t.Cleanup stops it.
type starter func(t *testing.T, cfg nodeConfig) *node

// newNode fills what both kinds of node share.
func newNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	base, err := proxy.BaseURI(proxy.ModeReverse, cfg.follow, cfg.public)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := cfg.pki.ClientTLS()
	tlsConf.ServerName = "localhost"
	n := &node{t: t, name: cfg.name, base: base, addr: cfg.lns[0].Addr().String(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}}
	t.Cleanup(n.client.CloseIdleConnections)
	return n
}

// pollInterval is the followers' poll interval.
const pollInterval = 100 * time.Millisecond

// startNode composes a node as the serve command does: a follower polling
// its origin in the background, publishing into a cache, and the server
// answering from that cache.
func startNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	n := newNode(t, cfg)
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
	n.follower, err = follow.New(follow.Config{
		URL: cfg.follow, Client: client, Store: c, Base: n.base,
		Interval: pollInterval, MaxBackoff: time.Second, Seed: 1,
		// Reverse mode, as serve sets it (ignored for a .bin origin).
		Transparent: !cfg.regenerate,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Repos: []proxy.Repo{{Name: cfg.name, Origin: cfg.follow, Base: n.base, Interval: pollInterval, Stats: n.follower.Stats,
			Hosts: []string{"localhost"}}}, // any port, as startServe's configuration
		Cache:    c,
		Client:   client,
		CertFile: cfg.pki.CertFile, KeyFile: cfg.pki.KeyFile,
		Node: cfg.name,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, len(cfg.lns))
	for _, ln := range cfg.lns {
		go func() { served <- srv.ServeTLS(ln) }()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.follower.Run(ctx) }()
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

// fetch fetches an https URL naming the node's public host from this
// node, whatever port the URL names.
func (n *node) fetch(uri string) []byte {
	n.t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		n.t.Fatal(err)
	}
	host := u.Host
	u.Host = n.addr
	return n.getHost(u.String(), host)
}

// get fetches a URL of the node (capped at 64 MiB) and fails the test
// unless the status is 200.
func (n *node) get(url string) []byte {
	n.t.Helper()
	return n.getHost(url, "")
}

// getHost is get with a Host header (none: the URL's).
func (n *node) getHost(url, host string) []byte {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Host = host
	resp, err := n.client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		n.t.Fatalf("%s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		n.t.Fatalf("%s: status %d: %s", url, resp.StatusCode, b)
	}
	return b
}

// state returns the upstream session and serial the node serves, from its
// /status.json ("" before its first state).
func (n *node) state() (string, uint64) {
	n.t.Helper()
	var st struct {
		Repos []struct {
			Session string `json:"session"`
			Serial  uint64 `json:"serial"`
		} `json:"repos"`
	}
	if err := json.Unmarshal(n.get("https://"+n.addr+"/status.json"), &st); err != nil {
		n.t.Fatalf("%s: /status.json: %v", n.name, err)
	}
	if len(st.Repos) != 1 {
		n.t.Fatalf("%s: /status.json lists %d repositories, want 1", n.name, len(st.Repos))
	}
	return st.Repos[0].Session, st.Repos[0].Serial
}

// waitState polls until the node serves serial of the upstream session,
// for at most d.
func (n *node) waitState(session string, serial uint64, d time.Duration) {
	n.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s, sn := n.state()
		if s == session && sn == serial {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: serves session %q serial %d after %v, want session %s serial %d", n.name, s, sn, d, session, serial)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// notification fetches and decodes the node's notification.xml or .bin.
func (n *node) notification(format irpki.Format) *rrdpxml.Notification {
	n.t.Helper()
	name := "notification.xml"
	if format == irpki.FormatBin {
		name = "notification.bin"
	}
	b := n.get(n.url(name))
	var no *rrdpxml.Notification
	var err error
	if format == irpki.FormatBin {
		no, err = irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	} else {
		no, _, err = rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	}
	if err != nil {
		n.t.Fatalf("%s: %s: %v", n.name, name, err)
	}
	return no
}

// requests returns the node's rrdp_proxy_requests_total for a kind
// (notification, snapshot, delta), format (xml, bin) and status, from its
// /metrics.
func (n *node) requests(kind, format string, code int) int {
	n.t.Helper()
	// client_golang writes the labels sorted by name.
	want := fmt.Sprintf(`rrdp_proxy_requests_total{code="%d",format=%q,kind=%q,repo=%q} `, code, format, kind, n.name)
	sc := bufio.NewScanner(bytes.NewReader(n.get("https://" + n.addr + "/metrics")))
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

// counts are the requests a node answered with 200, by kind and format.
type counts struct{ xmlSnap, xmlDelta, binSnap, binDelta int }

func (n *node) counts() counts {
	return counts{
		xmlSnap: n.requests("snapshot", "xml", 200), xmlDelta: n.requests("delta", "xml", 200),
		binSnap: n.requests("snapshot", "bin", 200), binDelta: n.requests("delta", "bin", 200),
	}
}

func (c counts) sub(o counts) counts {
	return counts{c.xmlSnap - o.xmlSnap, c.xmlDelta - o.xmlDelta, c.binSnap - o.binSnap, c.binDelta - o.binDelta}
}
