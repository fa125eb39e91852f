package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// startRepoServer serves repos, each reverse under its own host
// p<i>.example, with no head: every path is a pull-through.
func startRepoServer(t *testing.T, cfg Config) *pullServer {
	t.Helper()
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.Cache = c
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &pullServer{s: s, addr: ln.Addr().String()}
}

// getHost fetches path from p with the Host header host.
func (p *pullServer) getHost(t *testing.T, host, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+p.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return resp.StatusCode, b
}

func newClientT(t *testing.T, cfg upstream.Config) *upstream.Client {
	t.Helper()
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPullRepoLimits: an http:// origin (another rrdp-proxy on a private
// link, publishing under an http Base) lists http:// URIs; pull-through
// decodes its notification with the repository's Limits, so AllowHTTP
// (what the follower of such an origin needs too) makes it work, and the
// repository's own Client fetches.
func TestPullRepoLimits(t *testing.T) {
	const session = "9df4b597-af9e-4dca-bdda-719cce2c4e28"
	files := map[string][]byte{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer origin.Close()
	snapshot := []byte(`<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + session + `" serial="7"></snapshot>`)
	sum := sha256.Sum256(snapshot)
	files["/rrdp/7/snapshot.xml"] = snapshot
	files["/rrdp/notification.xml"] = []byte(`<notification xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + session + `" serial="7">
  <snapshot uri="` + origin.URL + `/rrdp/7/snapshot.xml" hash="` + hex.EncodeToString(sum[:]) + `"/>
</notification>`)
	notif := origin.URL + "/rrdp/notification.xml"
	client := newClientT(t, upstream.Config{})
	ps := startRepoServer(t, Config{Repos: []Repo{
		{Name: "strict", Origin: notif, Base: "https://p0.example/rrdp/", Hosts: []string{"p0.example"}, Client: client},
		{Name: "http", Origin: notif, Base: "https://p1.example/rrdp/", Hosts: []string{"p1.example"}, Client: client,
			Limits: rrdpxml.Limits{AllowHTTP: true}},
		{Name: "none", Origin: notif, Base: "https://p2.example/rrdp/", Hosts: []string{"p2.example"}},
	}})
	const path = "/rrdp/7/snapshot.xml"
	if code, _ := ps.getHost(t, "p0.example", path); code != http.StatusBadGateway {
		t.Errorf("http origin without AllowHTTP: got %d, want 502", code)
	}
	if code, body := ps.getHost(t, "p1.example", path); code != http.StatusOK || !bytes.Equal(body, snapshot) {
		t.Errorf("http origin with AllowHTTP: got %d and %q, want 200 and the origin's snapshot", code, body)
	}
	if code, _ := ps.getHost(t, "p2.example", path); code != http.StatusNotFound {
		t.Errorf("repository without a client, none in Config: got %d, want 404", code)
	}
}

// TestPullRepoCA: each repository's pull-through trusts its own CA only:
// the Server's Client trusts the origin's CA, but a repository with its
// own Client that does not is refused (502), while one whose Client does
// pulls.
func TestPullRepoCA(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.advance(1)
	info := e.repo.Info()
	ca, err := os.ReadFile(e.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := os.ReadFile(other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ps := startRepoServer(t, Config{Client: newClientT(t, upstream.Config{CAPEM: ca}), Repos: []Repo{
		{Name: "own", Origin: e.notif, Base: "https://p0.example/rrdp/", Hosts: []string{"p0.example"},
			Client: newClientT(t, upstream.Config{CAPEM: ca})},
		{Name: "foreign", Origin: e.notif, Base: "https://p1.example/rrdp/", Hosts: []string{"p1.example"},
			Client: newClientT(t, upstream.Config{CAPEM: otherCA})},
	}})
	path := "/" + info.Snapshot.Path
	code, body := ps.getHost(t, "p0.example", path)
	if code != http.StatusOK || sha256.Sum256(body) != info.Snapshot.Hash {
		t.Errorf("repository trusting the origin's CA: got %d, want 200 and the snapshot", code)
	}
	if code, _ := ps.getHost(t, "p1.example", path); code != http.StatusBadGateway {
		t.Errorf("repository trusting another CA: got %d, want 502", code)
	}
}

// TestShutdownCutsPull: Shutdown returns at once (well within its
// generous deadline, which it would otherwise report) while a
// pull-through waits on an origin that accepted the connection and never
// answers; the waiting request is answered 503.
func TestShutdownCutsPull(t *testing.T) {
	addr, accepted := rp.SilentOrigin(t)
	// Every deadline of the client is far beyond the test's.
	far := upstream.Config{ConnectTimeout: time.Hour, HeaderTimeout: time.Hour, NotificationTimeout: time.Hour, MinRate: -1}
	ps := startRepoServer(t, Config{Repos: []Repo{{Name: "t", Origin: "http://" + addr + "/rrdp/notification.xml",
		Base: "https://p.example/rrdp/", Hosts: []string{"p.example"}, Client: newClientT(t, far)}}})
	code := make(chan int, 1)
	go func() { code <- ps.status(t, "/rrdp/x.xml") }()
	select {
	case <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the origin saw no connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ps.s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown with a pull waiting on a silent origin: got %v, want nil", err)
	}
	if c := <-code; c != http.StatusServiceUnavailable {
		t.Errorf("request whose pull shutdown cut: got %d, want 503", c)
	}
}
