package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// env is a real origin (repotest repository over https), a real follower
// publishing into a cache, and the Server on 127.0.0.1.
type env struct {
	t        testing.TB
	origin   *rp.Origin
	repo     *repotest.Repo
	dir      string // the origin's directory
	pki      *rp.PKI
	client   *upstream.Client
	cache    *cache.Cache
	follower *follow.Follower
	srv      *Server
	addr     string // host:port of the server
	url      string // http://addr
	notif    string // the origin's notification URL
	base     string // the repository's Base
	now      time.Time
}

// newEnv starts everything; the repository is not synced yet (see sync).
func newEnv(t testing.TB, mode Mode) *env { return newEnvTLS(t, mode, tlsNone) }

// tlsMode is how a test server gets its certificate.
type tlsMode int

const (
	tlsNone   tlsMode = iota // plain HTTP
	tlsFiles                 // Config.CertFile and KeyFile
	tlsConfig                // Config.TLS
)

// newEnvTLS is newEnv with the server speaking TLS unless tls is tlsNone
// (with the origin's PKI: e.pki.CAFile is the CA to trust).
func newEnvTLS(t testing.TB, mode Mode, tls tlsMode) *env { return newEnvConfig(t, mode, tls, nil) }

// newEnvConfig is newEnvTLS with edit, if set, changing the server's
// Config before New.
func newEnvConfig(t testing.TB, mode Mode, tls tlsMode, edit func(*Config)) *env {
	t.Helper()
	return newEnvProfile(t, mode, tls, repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, edit)
}

// newEnvProfile is newEnvConfig with the origin's repository made with
// profile.
func newEnvProfile(t testing.TB, mode Mode, tls tlsMode, profile repotest.Profile, edit func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	e := &env{t: t, origin: o, dir: dir, pki: pki, now: time.Now().UTC().Truncate(time.Second)}
	e.repo, err = repotest.Create(dir, repotest.Config{
		Profile: profile, Seed: 1, BaseURL: o.URL()}, e.now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if e.client, err = upstream.New(upstream.Config{CAPEM: ca}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	if e.cache, err = cache.New(cache.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cache.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.url = "http://" + e.addr
	e.notif = o.URL() + "rrdp/notification.xml"
	if e.base, err = BaseURI(mode, e.notif, "https://"+e.addr+"/"); err != nil {
		t.Fatal(err)
	}
	e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: e.cache, Base: e.base})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Repos:  []Repo{{Name: "test", Origin: e.notif, Mode: mode, Base: e.base, Stats: e.follower.Stats}},
		Cache:  e.cache,
		Client: e.client,
	}
	switch tls {
	case tlsFiles:
		cfg.CertFile, cfg.KeyFile = pki.CertFile, pki.KeyFile
	case tlsConfig:
		cfg.TLS = pki.ServerTLS()
	}
	if tls != tlsNone {
		e.url = "https://" + e.addr
	}
	if edit != nil {
		edit(&cfg)
	}
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if tls != tlsNone {
			done <- e.srv.ServeTLS(ln)
		} else {
			done <- e.srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

// sync makes the follower publish the origin's current state.
func (e *env) sync() *follow.Head {
	e.t.Helper()
	if _, err := e.follower.Sync(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return e.follower.Head()
}

// advance makes the origin publish n more serials.
func (e *env) advance(n int) {
	e.t.Helper()
	e.now = e.now.Add(time.Minute)
	if err := e.repo.Advance(e.now, n); err != nil {
		e.t.Fatal(err)
	}
}

// path is the URL path of p relative to the Base.
func (e *env) path(p string) string {
	return e.base[strings.Index(e.base[len("https://"):], "/")+len("https://"):] + p
}

var httpClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
	Timeout:   30 * time.Second,
}

// get sends a request with headers (name, value pairs) to the server and
// returns the response with its body read.
func (e *env) get(method, path string, headers ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return resp, b
}

// originCount returns how often the origin answered path with status.
func (e *env) originCount(path string, status int) int {
	e.t.Helper()
	c, err := e.origin.Counts()
	if err != nil {
		e.t.Fatal(err)
	}
	return c[fmt.Sprintf("%s %d", path, status)]
}

// fileOf returns the first plain file of h of the kind and format wanted.
func fileOf(t testing.TB, h *follow.Head, kind, format string) follow.File {
	t.Helper()
	for _, f := range h.Files {
		if !f.Gzip && f.Kind.String() == kind && f.Format.String() == format {
			return f
		}
	}
	t.Fatalf("head has no %s %s", format, kind)
	return follow.File{}
}

// originCountAtLeast polls the origin's count of path with status until
// it reaches min or 10s pass, and returns it: the origin records a request
// after its response went out, so a client may see the body first.
func (e *env) originCountAtLeast(path string, status, min int) int {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := e.originCount(path, status)
		if n >= min || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
