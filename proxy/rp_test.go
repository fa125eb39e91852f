package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestRelyingParties runs rpki-client and FORT through the proxy in
// reverse-proxy mode, as deployed in front of a publication server: the
// repository's certificates name https://localhost:P/rrdp/notification.xml,
// the proxy answers at localhost:P with TLS, and the publication server
// is elsewhere (port Q), reached by the follower under another name, as a
// proxy reaches its origin by an internal address. The TA certificate,
// which is not RRDP, comes from the origin: the TAL names it there.
func TestRelyingParties(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl", "faketime")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The proxy's address, named by the certificates.
	ln4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln4.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{ln4}
	if ln6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port)); err == nil {
		lns = append(lns, ln6) // the relying parties may try ::1 first
	}
	public := fmt.Sprintf("https://localhost:%d/", port)

	dir := t.TempDir()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{
		Profile: repotest.Profile{Intermediates: 1, Members: 3, ROAs: 12, EEKeys: 2}, Seed: 3, BaseURL: public}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	// The origin's view: the same files, its notification naming them at
	// the origin's own address; and a TAL naming the TA certificate there.
	originNotif := origin.URL() + "rrdp/origin-notification.xml"
	tal := filepath.Join(t.TempDir(), "ta.tal")
	publish := func() {
		t.Helper()
		for _, f := range []struct{ from, to string }{
			{filepath.Join(dir, repotest.NotificationPath), filepath.Join(dir, "rrdp", "origin-notification.xml")},
			{filepath.Join(dir, repotest.TALPath), tal},
		} {
			b, err := os.ReadFile(f.from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.to, bytes.ReplaceAll(b, []byte(public), []byte(origin.URL())), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish()

	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base, err := BaseURI(ModeReverse, originNotif, public)
	if err != nil {
		t.Fatal(err)
	}
	f, err := follow.New(follow.Config{URL: originNotif, Client: client, Store: c, Base: base})
	if err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if _, err := f.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sync()
	srv, err := New(Config{
		Repos:    []Repo{{Name: "repo", Origin: originNotif, Base: base, Stats: f.Stats}},
		Cache:    c,
		Client:   client,
		CertFile: pki.CertFile, KeyFile: pki.KeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { done <- srv.ServeTLS(ln) }()
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		for range lns {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	notif304 := func() uint64 {
		return srv.tab.Load().repos[0].m.requests[kindNotification][formatXML][codeIndex(304)].Load()
	}

	rcOpts := rp.Options{TAL: tal, CAFile: pki.CAFile, CacheDir: t.TempDir()}
	runRC := func(what string) {
		t.Helper()
		res, err := rp.RunRPKIClient(ctx, rcOpts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, repo.VRPs(), 10); d != "" {
			t.Errorf("%s: rpki-client VRPs differ from the expected ones:\n%s", what, d)
		}
		t.Logf("%s: rpki-client: %d VRPs in %v", what, len(res.VRPs), res.Elapsed.Round(time.Millisecond))
	}

	served := func(k fileKind) uint64 {
		return srv.tab.Load().repos[0].m.requests[k][formatXML][codeIndex(200)].Load()
	}
	runRC("first run")
	if n := served(kindSnapshot); n != 1 {
		t.Errorf("first run: the proxy served %d snapshots, want 1", n)
	}
	if n := notif304(); n != 0 {
		t.Errorf("first run: %d notifications answered 304, want 0", n)
	}
	runRC("second run")
	if n := notif304(); n != 1 {
		t.Errorf("second run: %d notifications answered 304, want 1", n)
	}
	origin.Reset()
	now = now.Add(time.Minute)
	if err := repo.Advance(now, 2); err != nil {
		t.Fatal(err)
	}
	publish()
	sync()
	runRC("after two serials")
	counts, err := origin.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if n := served(kindDelta); n != 2 {
		t.Errorf("after two serials: the proxy served %d deltas, want 2", n)
	}
	for k := range counts {
		if strings.HasPrefix(k, "/rrdp/notification.xml") {
			t.Errorf("origin served %s: a relying party went around the proxy", k)
		}
		if strings.Contains(k, "snapshot") && !strings.Contains(k, "/ta.cer") {
			// The follower fetches deltas; nobody needs the origin's
			// snapshot again.
			t.Errorf("origin served %s after two serials; want deltas only", k)
		}
	}

	res, err := rp.RunFORT(ctx, rp.Options{TAL: tal, CAFile: pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Errorf("fort: %v", err)
	}
	if d := rpki.DiffVRPs(res.VRPs, repo.VRPs(), 10); d != "" {
		t.Errorf("fort VRPs differ from the expected ones:\n%s", d)
	}
	t.Logf("fort: %d VRPs in %v", len(res.VRPs), res.Elapsed.Round(time.Millisecond))
}
