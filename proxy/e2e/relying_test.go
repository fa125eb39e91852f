package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// rpTools are what the chain tests run.
var rpTools = []string{"root", "unshare", "mount", "rpki-client", "fort", "openssl", "faketime", "nginx"}

// TestChain validates a generated repository through nginx, the core and
// the edge with rpki-client and FORT: at the first serial, after three
// serials that reached the edge as .bin deltas, and after a session reset
// at the origin. The VRPs must equal expected-vrps.csv each time. The
// nodes are composed from the packages in this process, then run as
// `rrdp-proxy serve` processes.
func TestChain(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, rpTools...)
	t.Run("packages", func(t *testing.T) { testChain(t, startNode) })
	t.Run("serve", func(t *testing.T) { testChain(t, startServe) })
}

func testChain(t *testing.T, spawn starter) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	edgeLns, err := rp.Listen(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := newChain(t, ctx, spawn, pki, dir, filepath.Join(dir, repotest.TALPath), edgeLns)
	prof, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{Profile: prof, Seed: 8, BaseURL: c.public}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	c.start(edgeLns)
	expected := func() []rpki.VRP {
		t.Helper()
		v, err := rp.ReadVRPCSV(filepath.Join(dir, repotest.VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// (a) The first serial: snapshots all the way. The edge serves XML
	// under a session derived from the core's.
	in := repo.Info()
	c.reach(in.SessionID, in.Serial)
	if xml, want := c.edge.notification(irpki.FormatXML).SessionID, irpki.DerivedSession(in.SessionID); xml != want {
		t.Errorf("first serial: the edge serves session %s, want %s", xml, want)
	}
	c.originFetched()
	edge0 := c.edge.counts() // after reach's comparison with the twin
	c.validate("first serial", expected())
	if d := c.edge.counts().sub(edge0); d.xmlSnap != 2 {
		t.Errorf("first serial: the edge served %d XML snapshots, want 2 (one to each relying party)", d.xmlSnap)
	}

	// (b) Three serials, in two steps: the core applies the origin's XML
	// deltas, the edge and its twin the core's .bin deltas.
	core0 := c.core.counts()
	for _, n := range []int{1, 2} {
		if err := repo.Advance(now, n); err != nil {
			t.Fatal(err)
		}
		c.publish()
		in = repo.Info()
		c.reach(in.SessionID, in.Serial)
	}
	if in.Serial != 4 {
		t.Fatalf("serial %d after three more, want 4", in.Serial)
	}
	fetched := c.originFetched()
	// The core is transparent (reverse mode): after its delta syncs it
	// fetched the origin's snapshot of each serial it published (one or
	// two syncs for the two steps), the last one's among them.
	if got := hasSuffix(fetched, "snapshot.xml"); len(got) == 0 || len(got) > 2 || !slices.Contains(got, "/"+in.Snapshot.Path) {
		t.Errorf("after three serials: the core fetched the snapshots %v from the origin, want one or two, /%s among them", got, in.Snapshot.Path)
	}
	for _, d := range in.Deltas {
		if !slices.Contains(fetched, "/"+d.Path) {
			t.Errorf("after three serials: the core did not fetch delta %d (/%s) from the origin; it fetched %v", d.Serial, d.Path, fetched)
		}
	}
	if d := c.core.counts().sub(core0); d.binDelta != 6 || d.binSnap != 0 {
		t.Errorf("after three serials: the core served the edge and its twin %d .bin deltas and %d .bin snapshots, want 3 each and 0", d.binDelta, d.binSnap)
	}
	// A node that joins now takes the core's snapshot, which the core
	// regenerated after its deltas, and must still serve the edge's bytes:
	// the regenerated XML does not depend on the path taken.
	lateLns, err := rp.Listen(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	late := spawn(t, nodeConfig{name: "late", follow: c.core.url("notification.bin"), public: c.public, lns: lateLns, pki: pki})
	late.waitState(c.core.notification(irpki.FormatBin).SessionID, in.Serial, time.Minute)
	sameBytes(t, c.edge, late)
	edge0 = c.edge.counts()
	c.validate("after three serials", expected())
	// rpki-client (with its cache) takes the three deltas; FORT, whose
	// RRDP state lives in memory only, the snapshot.
	if d := c.edge.counts().sub(edge0); d.xmlDelta != 3 || d.xmlSnap != 1 {
		t.Errorf("after three serials: the edge served %d XML deltas and %d XML snapshots, want 3 and 1", d.xmlDelta, d.xmlSnap)
	}

	// (c) A session reset at the origin: a new session at the edge too.
	xml0 := c.edge.notification(irpki.FormatXML).SessionID
	core0 = c.core.counts()
	if err := repo.ResetSession(now); err != nil {
		t.Fatal(err)
	}
	c.publish()
	in = repo.Info()
	c.reach(in.SessionID, in.Serial)
	late.waitState(c.core.notification(irpki.FormatBin).SessionID, in.Serial, time.Minute)
	if xml := c.edge.notification(irpki.FormatXML).SessionID; xml == xml0 {
		t.Errorf("after a session reset: the edge still serves session %s", xml)
	}
	if d := c.core.counts().sub(core0); d.binSnap != 3 {
		t.Errorf("after a session reset: the core served %d .bin snapshots, want 3 (to the edge, its twin and the late node)", d.binSnap)
	}
	edge0 = c.edge.counts()
	c.validate("after a session reset", expected())
	if d := c.edge.counts().sub(edge0); d.xmlSnap != 2 {
		t.Errorf("after a session reset: the edge served %d XML snapshots, want 2", d.xmlSnap)
	}
}

// TestChainKrill validates the real repository Krill produced
// (../shared/realdata) through nginx, the core and the edge at
// localhost:3000, the address its certificates name, with the relying
// parties' clock at 2023-02-14, when its objects are valid. Their VRPs
// must equal the oracle's. The nodes run as in TestChain.
func TestChainKrill(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, rpTools...)
	t.Run("packages", func(t *testing.T) { testChainKrill(t, startNode) })
	t.Run("serve", func(t *testing.T) { testChainKrill(t, startServe) })
}

func testChainKrill(t *testing.T, spawn starter) {
	good := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	oracle := realdata.Path(t, "krill-sync", "oracle")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Other packages' tests use port 3000 too: wait for them, then fail.
	// The edge process binds the port after the test releases it: the
	// lock keeps other packages' tests off it meanwhile.
	unlock, err := rp.LockPort(3000, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	edgeLns, err := rp.Listen(3000, 2*time.Minute)
	if err != nil {
		t.Fatalf("the edge must listen at localhost:3000, which the Krill certificates name: %v", err)
	}
	const session = "cd0c701d-ff09-4e95-8f2a-fa24de875fb5" // serial 3
	c := newChain(t, ctx, spawn, pki, good, filepath.Join(good, "ta.tal"), edgeLns)
	// The TAL names ta/ta.cer; the data set has it at the top.
	if err := os.Mkdir(filepath.Join(c.view, "ta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(good, "ta.cer"), filepath.Join(c.view, "ta", "ta.cer")); err != nil {
		t.Fatal(err)
	}
	if c.public != "https://localhost:3000/" {
		t.Fatalf("edge at %s", c.public)
	}
	c.when = time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	c.start(edgeLns)
	c.reach(session, 3)
	want := krillOracle(t, oracle)
	edge0 := c.edge.counts()
	c.validate("krill", want)
	if xml, want := c.edge.notification(irpki.FormatXML).SessionID, irpki.DerivedSession(session); xml != want {
		t.Errorf("the edge serves session %s, want %s, derived from Krill's", xml, want)
	}
	if d := c.edge.counts().sub(edge0); d.xmlSnap != 2 {
		t.Errorf("the edge served %d XML snapshots, want one to each relying party", d.xmlSnap)
	}
	if n := c.core.requests("snapshot", "bin", 200); n != 2 {
		t.Errorf("the core served %d .bin snapshots, want one to the edge and one to its twin", n)
	}
}

// krillOracle returns the Krill set's VRPs from the oracle directory,
// checking that rpki-client's and FORT's files agree.
func krillOracle(t *testing.T, oracle string) []rpki.VRP {
	t.Helper()
	want, err := rp.ReadVRPCSV(filepath.Join(oracle, "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fortWant, err := rp.ReadVRPCSV(filepath.Join(oracle, "fort-1.5.4.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(fortWant, want, 10); d != "" {
		t.Fatalf("the oracle's two files differ:\n%s", d)
	}
	return want
}
