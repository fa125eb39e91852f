package proxy

import (
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
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// rig runs the proxy in reverse-proxy mode as deployed in front of a
// publication server: the repository's certificates name the public
// address (https://localhost:P/), where the proxy answers with TLS, and
// the publication server is elsewhere (port Q). The follower reaches it
// under its own address, as a proxy reaches its origin by an internal
// name: the origin serves beside the repository's notification a copy
// naming the files at Q (origin-notification.xml). The TA certificate,
// which is not RRDP, comes from the origin: the test's TAL names it there.
type rig struct {
	t        *testing.T
	ctx      context.Context
	pki      *rp.PKI
	dir      string // the origin's directory
	talSrc   string // the repository's TAL
	public   string // https://localhost:P/
	origin   *rp.Origin
	tal      string // the TAL the relying parties use
	follower *follow.Follower
	srv      *Server
}

// listenPort listens on localhost at port (a free one for 0), waiting up
// to two minutes for a fixed port that another package's test holds.
func listenPort(t *testing.T, port int) []net.Listener {
	t.Helper()
	if port != 0 {
		// A fixed port is shared with other packages' tests (the Krill
		// set's 3000), which close their listener for a child process
		// to bind it: binding it without their lock can take it in that
		// gap (rp.LockPort).
		unlock, err := rp.LockPort(port, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unlock)
	}
	lns, err := rp.Listen(port, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return lns
}

func newRig(t *testing.T, ctx context.Context, pki *rp.PKI, dir, talSrc string, lns []net.Listener) *rig {
	t.Helper()
	g := &rig{t: t, ctx: ctx, pki: pki, dir: dir, talSrc: talSrc,
		public: fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port),
		tal:    filepath.Join(t.TempDir(), "ta.tal")}
	var err error
	if g.origin, err = rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.origin.Close() })
	return g
}

// start publishes the origin's view, syncs once and starts the proxy.
func (g *rig) start() {
	t := g.t
	g.publish()
	originNotif := g.origin.URL() + "rrdp/origin-notification.xml"
	ca, err := os.ReadFile(g.pki.CAFile)
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
	base, err := BaseURI(ModeReverse, originNotif, g.public)
	if err != nil {
		t.Fatal(err)
	}
	if g.follower, err = follow.New(follow.Config{URL: originNotif, Client: client, Store: c, Base: base}); err != nil {
		t.Fatal(err)
	}
	g.sync()
	g.srv, err = New(Config{
		Repos:    []Repo{{Name: "repo", Origin: originNotif, Base: base, Stats: g.follower.Stats}},
		Cache:    c,
		Client:   client,
		CertFile: g.pki.CertFile, KeyFile: g.pki.KeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (g *rig) serve(lns []net.Listener) {
	done := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { done <- g.srv.ServeTLS(ln) }()
	}
	g.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.srv.Shutdown(ctx); err != nil {
			g.t.Error(err)
		}
		for range lns {
			if err := <-done; err != nil {
				g.t.Error(err)
			}
		}
	})
}

// publish writes the origin's notification and the test's TAL.
func (g *rig) publish() {
	g.t.Helper()
	for _, f := range []struct{ from, to string }{
		{filepath.Join(g.dir, "rrdp", "notification.xml"), filepath.Join(g.dir, "rrdp", "origin-notification.xml")},
		{g.talSrc, g.tal},
	} {
		if err := rp.Rewrite(f.to, f.from, g.public, g.origin.URL()); err != nil {
			g.t.Fatal(err)
		}
	}
}

func (g *rig) sync() {
	g.t.Helper()
	if _, err := g.follower.Sync(g.ctx); err != nil {
		g.t.Fatal(err)
	}
}

// served counts the proxy's answers for XML files of kind with status.
func (g *rig) served(k fileKind, status int) uint64 {
	return g.srv.tab.Load().repos[0].m.requests[k][formatXML][codeIndex(status)].Load()
}

func (g *rig) runRPKIClient(what string, opts rp.Options, want []rpki.VRP) {
	g.t.Helper()
	res, err := rp.RunRPKIClient(g.ctx, opts)
	if err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
	if err := res.Err(); err != nil {
		g.t.Errorf("%s: %v", what, err)
	}
	if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
		g.t.Errorf("%s: rpki-client VRPs differ from the expected ones:\n%s", what, d)
	}
	g.t.Logf("%s: rpki-client: %d VRPs in %v", what, len(res.VRPs), res.Elapsed.Round(time.Millisecond))
}

func (g *rig) runFORT(what string, opts rp.Options, want []rpki.VRP) {
	g.t.Helper()
	res, err := rp.RunFORT(g.ctx, opts)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		g.t.Errorf("%s: fort: %v", what, err)
	}
	if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
		g.t.Errorf("%s: fort VRPs differ from the expected ones:\n%s", what, d)
	}
	g.t.Logf("%s: fort: %d VRPs in %v", what, len(res.VRPs), res.Elapsed.Round(time.Millisecond))
}

// TestRelyingParties runs rpki-client and FORT through the proxy against
// a generated repository: the snapshot, a 304 on the second run, deltas
// after two serials.
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
	lns := listenPort(t, 0)
	dir := t.TempDir()
	g := newRig(t, ctx, pki, dir, filepath.Join(dir, repotest.TALPath), lns)
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{
		Profile: repotest.Profile{Intermediates: 1, Members: 3, ROAs: 12, EEKeys: 2}, Seed: 3, BaseURL: g.public}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	g.start()
	g.serve(lns)

	rcOpts := rp.Options{TAL: g.tal, CAFile: pki.CAFile, CacheDir: t.TempDir()}
	g.runRPKIClient("first run", rcOpts, repo.VRPs())
	if n := g.served(kindSnapshot, 200); n != 1 {
		t.Errorf("first run: the proxy served %d snapshots, want 1", n)
	}
	if n := g.served(kindNotification, 304); n != 0 {
		t.Errorf("first run: %d notifications answered 304, want 0", n)
	}
	g.runRPKIClient("second run", rcOpts, repo.VRPs())
	if n := g.served(kindNotification, 304); n != 1 {
		t.Errorf("second run: %d notifications answered 304, want 1", n)
	}

	g.origin.Reset()
	if err := repo.Advance(now.Add(time.Minute), 2); err != nil {
		t.Fatal(err)
	}
	g.publish()
	g.sync()
	g.runRPKIClient("after two serials", rcOpts, repo.VRPs())
	if n := g.served(kindDelta, 200); n != 2 {
		t.Errorf("after two serials: the proxy served %d deltas, want 2", n)
	}
	counts, err := g.origin.Counts()
	if err != nil {
		t.Fatal(err)
	}
	for k := range counts {
		if strings.HasPrefix(k, "/rrdp/notification.xml") {
			t.Errorf("origin served %s: a relying party went around the proxy", k)
		}
		if strings.Contains(k, "snapshot") {
			t.Errorf("origin served %s after two serials; want deltas only", k)
		}
	}
	g.runFORT("after two serials", rp.Options{TAL: g.tal, CAFile: pki.CAFile}, repo.VRPs())
}

// TestRelyingPartiesKrill runs them through the proxy against the real
// repository Krill produced (../shared/realdata), under the faked time at
// which its objects are valid, with the proxy at localhost:3000, the
// address its certificates name.
func TestRelyingPartiesKrill(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl", "faketime")
	good := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	oracle := realdata.Path(t, "krill-sync", "oracle")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The files are read in place, through links.
	tree := t.TempDir()
	session := "cd0c701d-ff09-4e95-8f2a-fa24de875fb5"
	for link, target := range map[string]string{"ta/ta.cer": "ta.cer", "rrdp/notification.xml": "rrdp/notification.xml", "rrdp/" + session: "rrdp/" + session} {
		p := filepath.Join(tree, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(good, target), p); err != nil {
			t.Fatal(err)
		}
	}
	lns := listenPort(t, 3000)
	g := newRig(t, ctx, pki, tree, filepath.Join(good, "ta.tal"), lns)
	g.start()
	g.serve(lns)
	when := time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		name, csv string
		run       func(string, rp.Options, []rpki.VRP)
		opts      rp.Options
	}{
		{"rpki-client", "rpki-client-8.2.csv", g.runRPKIClient, rp.Options{TAL: g.tal, CAFile: pki.CAFile, Time: when, CacheDir: t.TempDir()}},
		{"fort", "fort-1.5.4.csv", g.runFORT, rp.Options{TAL: g.tal, CAFile: pki.CAFile, Time: when}},
	} {
		want, err := rp.ReadVRPCSV(filepath.Join(oracle, r.csv))
		if err != nil {
			t.Fatal(err)
		}
		r.run("krill", r.opts, want)
	}
	if n := g.served(kindSnapshot, 200); n != 2 {
		t.Errorf("the proxy served %d snapshots, want one to each relying party", n)
	}
}
