package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// chain is the topology of the tests, on the loopback interface:
//
//	nginx (the repository's files) -> core (XML and .bin)
//	  -> edge (follows the core's notification.bin, serves XML over TLS
//	     at https://localhost:P/, the address the certificates name)
//	  -> rpki-client, FORT
//
// As in proxy's relying-party rig, the repository names the public
// address (the edge), and its origin is reached under another, as a
// reverse proxy reaches its publication server by an internal name:
// nginx serves a view of the repository (see originView) whose
// notification names the files at nginx. The TA certificate, which is not
// RRDP, comes from nginx: the TAL the relying parties use names it there.
type chain struct {
	t      *testing.T
	ctx    context.Context
	pki    *rp.PKI
	dir    string // the repository
	view   string // nginx's root: originView of dir
	public string // https://localhost:P/
	talSrc string // the repository's TAL
	tal    string // the relying parties' TAL
	origin *rp.Origin
	core   *node
	edge   *node
	// twin is a second edge, behind the same public URL (as a fleet
	// behind a load balancer) but on its own port; relying parties do
	// not use it. It must serve the edge's bytes.
	twin *node
	// rcCache is rpki-client's cache, kept across runs so that it
	// fetches deltas, as a relying party in production does.
	rcCache string
	// when is the relying parties' clock (zero: the real one).
	when time.Time
	// spawn starts the core and the edge.
	spawn starter
}

// newChain starts nginx on a view of dir; the edge will listen on lns,
// whose port the repository's URIs name. Call start once the repository
// is there.
func newChain(t *testing.T, ctx context.Context, spawn starter, pki *rp.PKI, dir, talSrc string, lns []net.Listener) *chain {
	t.Helper()
	c := &chain{t: t, ctx: ctx, spawn: spawn, pki: pki, dir: dir, talSrc: talSrc,
		public:  fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port),
		view:    t.TempDir(),
		tal:     filepath.Join(t.TempDir(), "ta.tal"),
		rcCache: t.TempDir(),
	}
	var err error
	if c.origin, err = rp.NewOrigin(rp.OriginConfig{Dir: c.view, PKI: pki, Nginx: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.origin.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// start publishes the origin's view and starts the core and the edge.
func (c *chain) start(edgeLns []net.Listener) {
	t := c.t
	t.Helper()
	c.publish()
	coreLns, err := rp.Listen(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.core = c.spawn(t, nodeConfig{
		name:   "core",
		follow: c.origin.URL() + "rrdp/notification.xml",
		public: fmt.Sprintf("https://localhost:%d/", coreLns[0].Addr().(*net.TCPAddr).Port),
		lns:    coreLns, pki: c.pki,
	})
	c.edge = c.spawn(t, nodeConfig{
		name:   "edge",
		follow: c.core.url("notification.bin"),
		public: c.public,
		lns:    edgeLns, pki: c.pki,
	})
	twinLns, err := rp.Listen(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.twin = c.spawn(t, nodeConfig{
		name:   "twin",
		follow: c.core.url("notification.bin"),
		public: c.public,
		lns:    twinLns, pki: c.pki,
	})
}

// publish updates nginx's view and the relying parties' TAL.
func (c *chain) publish() {
	c.t.Helper()
	originView(c.t, c.dir, c.view, c.public, c.origin.URL())
	if err := rp.Rewrite(c.tal, c.talSrc, c.public, c.origin.URL()); err != nil {
		c.t.Fatal(err)
	}
}

// originView makes view show the repository in dir, which names its files
// under public, as its publication server serves it at origin: every
// file and directory of dir and of dir/rrdp is linked, except
// rrdp/notification.xml, which is rewritten to name the files at origin.
// It is called again after each change of the repository.
func originView(t *testing.T, dir, view, public, origin string) {
	t.Helper()
	for _, sub := range []string{".", "rrdp"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(view, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			rel := filepath.Join(sub, e.Name())
			if rel == "rrdp" || rel == filepath.Join("rrdp", "notification.xml") {
				continue
			}
			err := os.Symlink(filepath.Join(dir, rel), filepath.Join(view, rel))
			if err != nil && !errors.Is(err, fs.ErrExist) {
				t.Fatal(err)
			}
		}
	}
	notif := filepath.Join("rrdp", "notification.xml")
	if err := rp.Rewrite(filepath.Join(view, notif), filepath.Join(dir, notif), public, origin); err != nil {
		t.Fatal(err)
	}
}

// reach waits until the core serves serial of the origin's session
// and the edge serves it too, through the core's .bin.
func (c *chain) reach(session string, serial uint64) {
	c.t.Helper()
	c.core.waitState(session, serial, time.Minute)
	bin := c.core.notification(irpki.FormatBin).SessionID
	c.edge.waitState(bin, serial, time.Minute)
	c.twin.waitState(bin, serial, time.Minute)
	c.sameBytes()
}

// sameBytes checks that the edge and its twin serve the same bytes for
// the XML notification and every file it names: the XML regenerated from
// .bin is deterministic, so a fleet of edges agrees (DESIGN.md).
func (c *chain) sameBytes() {
	c.t.Helper()
	sameBytes(c.t, c.edge, c.twin)
}

// sameBytes checks that nodes x and y, behind the same public URL, serve
// the same XML notification and the same bytes for every file it names.
func sameBytes(t *testing.T, x, y *node) {
	t.Helper()
	a, b := x.fetch(x.url("notification.xml")), y.fetch(x.url("notification.xml"))
	if !bytes.Equal(a, b) {
		t.Fatalf("%s and %s serve different notification.xml:\n%s\n%s", x.name, y.name, a, b)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(a), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	uris := []string{n.Snapshot.URI}
	for _, d := range n.Deltas {
		uris = append(uris, d.URI)
	}
	for _, u := range uris {
		if !bytes.Equal(x.fetch(u), y.fetch(u)) {
			t.Errorf("%s and %s serve different bytes for %s", x.name, y.name, u)
		}
	}
}

// validate runs rpki-client (with its cache) and FORT through the edge;
// both must output want and log no problem.
func (c *chain) validate(what string, want []rpki.VRP) {
	c.t.Helper()
	validateVRPs(c.t, c.ctx, what, rp.Options{TAL: c.tal, CAFile: c.pki.CAFile, Time: c.when}, c.rcCache, want)
}

// validateVRPs runs rpki-client (with its cache in rcCache) and FORT with
// opts, and checks that each outputs want.
func validateVRPs(t *testing.T, ctx context.Context, what string, opts rp.Options, rcCache string, want []rpki.VRP) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: no expected VRPs", what)
	}
	rcOpts := opts
	rcOpts.CacheDir = rcCache
	for _, r := range []struct {
		name string
		run  func(context.Context, rp.Options) (*rp.Result, error)
		opts rp.Options
	}{
		{"rpki-client", rp.RunRPKIClient, rcOpts},
		{"fort", rp.RunFORT, opts},
	} {
		res, err := r.run(ctx, r.opts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
			t.Errorf("%s: %s VRPs differ from the expected ones:\n%s", what, r.name, d)
		}
		t.Logf("%s: %s: %d VRPs (want %d) in %v", what, r.name, len(res.VRPs), len(want), res.Elapsed.Round(time.Millisecond))
	}
}

// originFetched returns the paths nginx answered with 200 since its last
// Reset, and resets it.
func (c *chain) originFetched() []string {
	c.t.Helper()
	reqs, err := c.origin.Requests()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.origin.Reset(); err != nil {
		c.t.Fatal(err)
	}
	var paths []string
	for _, r := range reqs {
		if r.Status == 200 {
			paths = append(paths, r.Path)
		}
	}
	return paths
}

func hasSuffix(paths []string, suffix string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
	}
	return out
}
