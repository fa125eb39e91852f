package e2e_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// chain is the topology of the tests, on the loopback interface:
//
//	nginx (the repository's files) -> core (XML and .bin)
//	  -> edge (follows the core's notification.bin, serves XML over TLS
//	     at https://localhost:P/, the address the certificates name)
//	  -> rpki-client, FORT
//
// As in proxy's relying-party rig, the repository names the public
// address (the edge), and its origin is reached under another: nginx
// serves beside the repository's notification a copy naming the files at
// nginx (origin-notification.xml), which the core follows. The TA
// certificate, which is not RRDP, comes from nginx: the TAL the relying
// parties use names it there.
type chain struct {
	t      *testing.T
	ctx    context.Context
	pki    *rp.PKI
	dir    string // nginx's root
	public string // https://localhost:P/
	talSrc string // the repository's TAL
	tal    string // the relying parties' TAL
	origin *rp.Origin
	core   *node
	edge   *node
	// rcCache is rpki-client's cache, kept across runs so that it
	// fetches deltas, as a relying party in production does.
	rcCache string
	// when is the relying parties' clock (zero: the real one).
	when time.Time
}

// newChain starts nginx on dir; the edge will listen on lns, whose port
// the repository's URIs name. Call start once the repository is there.
func newChain(t *testing.T, ctx context.Context, pki *rp.PKI, dir, talSrc string, lns []net.Listener) *chain {
	t.Helper()
	c := &chain{t: t, ctx: ctx, pki: pki, dir: dir, talSrc: talSrc,
		public:  fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port),
		tal:     filepath.Join(t.TempDir(), "ta.tal"),
		rcCache: t.TempDir(),
	}
	var err error
	if c.origin, err = rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, Nginx: true}); err != nil {
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
	c.core = startNode(t, nodeConfig{
		name:   "core",
		follow: c.origin.URL() + "rrdp/origin-notification.xml",
		public: fmt.Sprintf("https://localhost:%d/", coreLns[0].Addr().(*net.TCPAddr).Port),
		lns:    coreLns, pki: c.pki,
	})
	c.edge = startNode(t, nodeConfig{
		name:   "edge",
		follow: c.core.url("notification.bin"),
		public: c.public,
		lns:    edgeLns, pki: c.pki,
	})
}

// publish writes the origin's notification and the relying parties' TAL.
func (c *chain) publish() {
	c.t.Helper()
	for _, f := range []struct{ dst, src string }{
		{filepath.Join(c.dir, "rrdp", "origin-notification.xml"), filepath.Join(c.dir, "rrdp", "notification.xml")},
		{c.tal, c.talSrc},
	} {
		if err := rp.Rewrite(f.dst, f.src, c.public, c.origin.URL()); err != nil {
			c.t.Fatal(err)
		}
	}
}

// reach waits until the core serves serial of the origin's session
// and the edge serves it too, through the core's .bin.
func (c *chain) reach(session string, serial uint64) {
	c.t.Helper()
	h := c.core.waitHead(session, serial)
	_, bin := h.Sessions()
	c.edge.waitHead(bin, serial)
}

// validate runs rpki-client (with its cache) and FORT through the edge;
// both must output want and log no problem.
func (c *chain) validate(what string, want []rpki.VRP) {
	c.t.Helper()
	if len(want) == 0 {
		c.t.Fatalf("%s: no expected VRPs", what)
	}
	opts := rp.Options{TAL: c.tal, CAFile: c.pki.CAFile, Time: c.when}
	rcOpts := opts
	rcOpts.CacheDir = c.rcCache
	for _, r := range []struct {
		name string
		run  func(context.Context, rp.Options) (*rp.Result, error)
		opts rp.Options
	}{
		{"rpki-client", rp.RunRPKIClient, rcOpts},
		{"fort", rp.RunFORT, opts},
	} {
		res, err := r.run(c.ctx, r.opts)
		if err != nil {
			c.t.Fatalf("%s: %v", what, err)
		}
		if err := res.Err(); err != nil {
			c.t.Errorf("%s: %v", what, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
			c.t.Errorf("%s: %s VRPs differ from the expected ones:\n%s", what, r.name, d)
		}
		c.t.Logf("%s: %s: %d VRPs (want %d) in %v", what, r.name, len(res.VRPs), len(want), res.Elapsed.Round(time.Millisecond))
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

func hasSuffix(paths []string, suffix string) []string {
	var out []string
	for _, p := range paths {
		if strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
	}
	return out
}
