package validate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// keyCache keeps the keys repotest derives, shared by the tests.
var keyCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "validate-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// rig is a node as serve composes it, in reverse mode: a generated
// repository whose certificates name the proxy's public TLS address, its
// publication server elsewhere (an rp.Origin, reached under its own
// address through origin-notification.xml), a follower publishing through
// the Validator into a cache, and the server with its admin listener.
type rig struct {
	t      *testing.T
	ctx    context.Context
	pki    *rp.PKI
	dir    string
	public string // https://localhost:P/
	origin *rp.Origin
	repo   *repotest.Repo
	tal    string // the TAL the relying parties use
	cache  *cache.Cache
	v      *validate.Validator
	vc     validate.Config // v's, TALs and Open filled in
	f      *follow.Follower
	srv    *proxy.Server
	admin  string // http://127.0.0.1:A/
	// startRun starts the Validator's Run, stopped at the test's end;
	// newRig calls it unless rigConfig.DeferRun.
	startRun func()
}

// rigConfig says what a rig serves: a repository generated for it with
// Profile, or a copy of the one generated in From (its certificates then
// name its own base URL, and no relying party can run).
type rigConfig struct {
	Profile  repotest.Profile
	From     string
	Validate validate.Config
	// Wrap, if set, wraps the cache as the Validator's next store.
	Wrap func(follow.Store) follow.Store
	// Compact, if set, publishes and serves the compact format signed by
	// it; OmitCertificates makes it lean.
	Compact          *compact.Signer
	OmitCertificates bool
	// CompactStore, if set, wraps the cache as the store of the compact
	// heads (a fleet's Redis tier refuses some).
	CompactStore func(follow.Store) follow.Store
	// FragmentMin is the follower's (follow.Config.FragmentMin): 1 makes
	// every snapshot composite, as a big repository's are.
	FragmentMin int64
	// DeferRun leaves the Validator's Run to startRun, so that a
	// measurement can tell the sync's memory from the validation's.
	DeferRun bool
}

func newRig(t *testing.T, ctx context.Context, rc rigConfig) *rig {
	t.Helper()
	vc := rc.Validate
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	lns, err := rp.Listen(0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	g := &rig{t: t, ctx: ctx, pki: pki, dir: t.TempDir(), tal: filepath.Join(t.TempDir(), "ta.tal"),
		public: fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port)}
	if g.origin, err = rp.NewOrigin(rp.OriginConfig{Dir: g.dir, PKI: pki}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.origin.Close() })
	if rc.From != "" {
		if err := os.CopyFS(g.dir, os.DirFS(rc.From)); err != nil {
			t.Fatal(err)
		}
		g.public = baseOf(t, g.dir)
	} else {
		now := time.Now().UTC().Truncate(time.Second)
		if g.repo, err = repotest.Create(g.dir, repotest.Config{Profile: rc.Profile, Seed: 7, BaseURL: g.public}, now, repotest.Options{KeyCache: keyCache}); err != nil {
			t.Fatal(err)
		}
	}
	g.publish()

	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if g.cache, err = cache.New(cache.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.cache.Close)

	talBytes, err := os.ReadFile(filepath.Join(g.dir, repotest.TALPath))
	if err != nil {
		t.Fatal(err)
	}
	tal, err := rpki.ParseTAL(talBytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(g.dir, repotest.TACertPath))
	if err != nil {
		t.Fatal(err)
	}
	vc.TALs = []rpki.TrustAnchor{{Name: "ta", TAL: tal, Cert: cert}}
	vc.Open = func(ctx context.Context, f follow.File) ([]byte, error) { return cache.ReadFile(ctx, &f, g.cache.Blob) }
	if rc.Compact != nil {
		vc.Compact = &validate.Compact{Signer: rc.Compact, Store: g.cache, Head: g.cache.Head, OmitCertificates: rc.OmitCertificates}
		if rc.CompactStore != nil {
			vc.Compact.Store = rc.CompactStore(g.cache)
		}
	}
	g.vc = vc
	if g.v, err = validate.New(vc); err != nil {
		t.Fatal(err)
	}
	if rc.Compact != nil {
		g.v.SetCompact([]validate.CompactRepo{{Key: "repo", Name: "repo"}})
	}
	g.startRun = func() {
		vctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); g.v.Run(vctx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	if !rc.DeferRun {
		g.startRun()
	}

	originNotif := g.origin.URL() + "rrdp/origin-notification.xml"
	base, err := proxy.BaseURI(proxy.ModeReverse, originNotif, g.public)
	if err != nil {
		t.Fatal(err)
	}
	var next follow.Store = g.cache
	if rc.Wrap != nil {
		next = rc.Wrap(next)
	}
	if g.f, err = follow.New(follow.Config{URL: originNotif, Client: client, Store: g.v.Store("repo", next), Repo: "repo", Base: base, FragmentMin: rc.FragmentMin}); err != nil {
		t.Fatal(err)
	}
	if g.srv, err = proxy.New(proxy.Config{
		Repos:      []proxy.Repo{{Name: "repo", Origin: originNotif, Key: "repo", Base: base, Stats: g.f.Stats, Compact: rc.Compact != nil}},
		Cache:      g.cache,
		CertFile:   pki.CertFile,
		KeyFile:    pki.KeyFile,
		Validation: g.v,
		AdminOnly:  true,
	}); err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.admin = "http://" + adminLn.Addr().String() + "/"
	served := make(chan error, len(lns)+1)
	for _, ln := range lns {
		go func() { served <- g.srv.ServeTLS(ln) }()
	}
	go func() { served <- g.srv.ServeAdmin(adminLn) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.srv.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		for range len(lns) + 1 {
			if err := <-served; err != nil {
				t.Error(err)
			}
		}
	})
	return g
}

// baseOf returns the base URL of the repository in dir: where its
// notification's snapshot URI has its rrdp/ directory.
func baseOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "rrdp", "notification.xml"))
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(n.Snapshot.URI, "/rrdp/")
	if i < 0 {
		t.Fatalf("snapshot %s is not under rrdp/", n.Snapshot.URI)
	}
	return n.Snapshot.URI[:i+1]
}

// publish writes the origin's view of its notification and the relying
// parties' TAL.
func (g *rig) publish() {
	g.t.Helper()
	for _, f := range []struct{ from, to string }{
		{filepath.Join(g.dir, "rrdp", "notification.xml"), filepath.Join(g.dir, "rrdp", "origin-notification.xml")},
		{filepath.Join(g.dir, repotest.TALPath), g.tal},
	} {
		if err := rp.Rewrite(f.to, f.from, g.public, g.origin.URL()); err != nil {
			g.t.Fatal(err)
		}
	}
}

// get fetches a page of the admin listener.
func (g *rig) get(p string) []byte {
	g.t.Helper()
	return g.do(http.MethodGet, p, http.StatusOK)
}

func (g *rig) do(method, p string, want int) []byte {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.admin+p, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		g.t.Fatal(err)
	}
	if resp.StatusCode != want {
		g.t.Fatalf("%s %s: got status %d (%s), want %d", method, p, resp.StatusCode, bytes.TrimSpace(b), want)
	}
	return b
}

// waitRuns waits until the Validator's status shows at least n runs.
func (g *rig) waitRuns(n int) {
	g.t.Helper()
	for {
		st := g.v.Status()
		if len(st.Runs) >= n {
			return
		}
		if st.Err != "" {
			g.t.Fatalf("waiting for %d validation runs: %s", n, st.Err)
		}
		select {
		case <-g.ctx.Done():
			g.t.Fatalf("waiting for %d validation runs: %v", n, g.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// breakHalf publishes a serial that invalidates at least half of the
// ROAs (see breakROAs).
func (g *rig) breakHalf() []string {
	return g.breakROAs(func(broke, total, points int) bool { return broke*2 >= total })
}

// breakROAs publishes a serial that invalidates ROAs: one ROA of each of
// enough CAs (the largest first, until enough says so) is corrupted (its
// last byte flipped), so that its file no longer has the hash its
// manifest lists and the whole publication point fails (RFC 9286 section
// 6.4). It writes the delta, the snapshot and the notification as a
// publication server would, and returns the directories broken.
func (g *rig) breakROAs(enough func(broke, total, points int) bool) []string {
	t := g.t
	t.Helper()
	nb, err := os.ReadFile(filepath.Join(g.dir, "rrdp", "notification.xml"))
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(nb), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	local := func(uri string) string {
		return filepath.Join(g.dir, filepath.FromSlash(strings.TrimPrefix(uri, g.public)))
	}
	sb, err := os.ReadFile(local(n.Snapshot.URI))
	if err != nil {
		t.Fatal(err)
	}
	dec := rrdpxml.NewDecoder(bytes.NewReader(sb), rrdpxml.Limits{})
	if _, err := dec.Header(); err != nil {
		t.Fatal(err)
	}
	objs := map[string][]byte{}
	var uris []string
	roas := map[string][]string{} // dir -> ROA URIs
	for {
		el, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		objs[el.URI] = bytes.Clone(el.Content)
		uris = append(uris, el.URI)
		if strings.HasSuffix(el.URI, ".roa") {
			d := el.URI[:strings.LastIndexByte(el.URI, '/')+1]
			roas[d] = append(roas[d], el.URI)
		}
	}
	dirs := make([]string, 0, len(roas))
	total := 0
	for d, rs := range roas {
		dirs = append(dirs, d)
		total += len(rs)
	}
	// The largest points first, so that half is reached with few CAs.
	sort.Slice(dirs, func(i, j int) bool {
		if len(roas[dirs[i]]) != len(roas[dirs[j]]) {
			return len(roas[dirs[i]]) > len(roas[dirs[j]])
		}
		return dirs[i] < dirs[j]
	})
	serial := n.Serial + 1
	var delta bytes.Buffer
	dw, err := rrdpxml.NewWriter(&delta, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: n.SessionID, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	var broken []string
	for broke := 0; !enough(broke, total, len(broken)); {
		d := dirs[len(broken)]
		u := roas[d][0]
		old := sha256.Sum256(objs[u])
		c := bytes.Clone(objs[u])
		c[len(c)-1] ^= 0xff
		objs[u] = c
		if err := dw.Publish(u, &old, c); err != nil {
			t.Fatal(err)
		}
		broken = append(broken, d)
		broke += len(roas[d])
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	sw, err := rrdpxml.NewWriter(&snap, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: n.SessionID, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uris {
		if err := sw.Publish(u, nil, objs[u]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	rel := fmt.Sprintf("rrdp/broken/%d/", serial)
	write := func(name string, b []byte) string {
		p := filepath.Join(g.dir, filepath.FromSlash(rel+name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return g.public + rel + name
	}
	n.Serial = serial
	n.Snapshot = rrdpxml.SnapshotRef{URI: write("snapshot.xml", snap.Bytes()), Hash: sha256.Sum256(snap.Bytes())}
	n.Deltas = append([]rrdpxml.DeltaRef{{Serial: serial, URI: write("delta.xml", delta.Bytes()), Hash: sha256.Sum256(delta.Bytes())}}, n.Deltas...)
	var out bytes.Buffer
	if err := rrdpxml.EncodeNotification(&out, n); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, "rrdp", "notification.xml"), out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	g.publish()
	slices.Sort(broken)
	return broken
}

// rpkiClient runs rpki-client through the proxy with a fresh cache (a
// cache of the earlier state would let it fall back to its last valid
// copies) and returns its VRPs.
func (g *rig) rpkiClient(what string) []rpki.VRP {
	g.t.Helper()
	res, err := rp.RunRPKIClient(g.ctx, rp.Options{TAL: g.tal, CAFile: g.pki.CAFile, CacheDir: g.t.TempDir()})
	if err != nil {
		g.t.Fatalf("%s: rpki-client: %v", what, err)
	}
	g.t.Logf("%s: rpki-client: %d VRPs in %v", what, len(res.VRPs), res.Elapsed.Round(time.Millisecond))
	return res.VRPs
}

// vrpsOf returns the VRPs of the proxy's /vrps.json (rpki-client's JSON),
// sorted as rpki.DiffVRPs wants them.
func vrpsOf(t *testing.T, b []byte) []rpki.VRP {
	t.Helper()
	vs, err := rpki.ParseVRPJSON(b)
	if err != nil {
		t.Fatalf("/vrps.json: %v", err)
	}
	return vs
}

// dirOf is the directory URI of an object URI.
func dirOf(uri string) string { return path.Dir(uri) + "/" }
