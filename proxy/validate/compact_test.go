package validate_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

// TestCompactServed follows a generated repository with the compact format
// on and syncs it as a compact relying party would, over HTTPS from the
// proxy's own listener: the VRPs equal the generator's at the first
// serial, after a serial of churn (taken as a compact delta) and after a
// session reset upstream; the snapshot that left the notification stays
// servable; a restarted Validator continues the same compact session
// without a new serial when nothing changed.
func TestCompactServed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	signer, err := compact.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Compact: signer})
	c := newCompactClient(t, g, signer)

	// Before the first state: 503, as for a repository without one.
	if code, _ := c.get(c.notification); code != http.StatusServiceUnavailable {
		t.Fatalf("compact notification before the first state: status %d, want 503", code)
	}

	sync := func(what string) *compact.State {
		t.Helper()
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		h := g.f.Head()
		g.waitCompact(func(cp compactState) bool { return cp.upstream == h.Serial })
		st, res := c.sync(what)
		if d := rpki.DiffVRPs(vrpsOfResult(res), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
			t.Fatalf("%s: the compact client's VRPs differ from the generator's:\n%s", what, d)
		}
		return st
	}
	first := sync("serial 1")
	firstSnap := c.snapshotURI

	now := time.Now().UTC().Truncate(time.Second)
	if err := g.repo.Advance(now.Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	g.publish()
	second := sync("serial 2")
	if second.Session != first.Session || second.Serial <= first.Serial {
		t.Fatalf("after a serial: compact session %s serial %d, want session %s above serial %d", second.Session, second.Serial, first.Session, first.Serial)
	}
	if c.fromSnapshot {
		t.Errorf("after a serial: the client read the snapshot, want the delta")
	}
	if code, _ := c.get(firstSnap); code != http.StatusOK {
		t.Errorf("the snapshot of the first compact serial, left the notification: status %d, want 200 (retained)", code)
	}

	// A session reset upstream is a delta downstream: what validated is
	// the same set of objects but for the reset's reissue.
	if err := g.repo.ResetSession(now.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	g.publish()
	third := sync("after a session reset")
	if third.Session != first.Session {
		t.Errorf("after an upstream session reset: compact session %s, want %s kept", third.Session, first.Session)
	}

	// A restart: a new Validator over the same cache continues the stored
	// publication, and the same state makes no new serial.
	g.checkRestart(ctx)
}

// checkRestart starts a new Validator over the rig's cache, as a restart
// does, and checks that it continues the stored compact publication
// without a new serial: the same state gives the same groups.
func (g *rig) checkRestart(ctx context.Context) {
	t := g.t
	t.Helper()
	before := g.cache.Head(cache.CompactKey("repo"))
	v2, err := validate.New(g.vc)
	if err != nil {
		t.Fatal(err)
	}
	v2.SetCompact([]validate.CompactRepo{{Key: "repo", Name: "repo"}})
	v2.Seed("repo", "repo", g.cache.Head("repo"))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); v2.Run(rctx) }()
	defer func() { stop(); <-done }()
	for {
		st := v2.Status()
		if len(st.Compact) == 1 && st.Compact[0].Err != "" {
			t.Fatalf("after a restart: %s", st.Compact[0].Err)
		}
		if len(st.Compact) == 1 && st.Compact[0].Serial > 0 {
			if st.Compact[0].Session != before.Session || st.Compact[0].Serial != before.Serial {
				t.Errorf("after a restart: compact session %s serial %d, want %s serial %d continued", st.Compact[0].Session, st.Compact[0].Serial, before.Session, before.Serial)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("after a restart: no compact state")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if after := g.cache.Head(cache.CompactKey("repo")); after != before {
		t.Errorf("after a restart: a new compact head (serial %d), want the stored one (serial %d) kept", after.Serial, before.Serial)
	}
}

// compactState is what waitCompact looks at.
type compactState struct {
	serial, upstream uint64
}

// waitCompact waits until the compact head of the rig's repository
// satisfies ok: its serial, and the upstream serial that the Validator
// holds for the repository when it was made.
func (g *rig) waitCompact(ok func(compactState) bool) {
	g.t.Helper()
	for {
		st := g.v.Status()
		if len(st.Compact) == 1 {
			cp := st.Compact[0]
			if cp.Err != "" {
				g.t.Fatalf("compact: %s", cp.Err)
			}
			if cp.Serial > 0 && ok(compactState{serial: cp.Serial, upstream: cp.RepoSerial}) {
				return
			}
		}
		select {
		case <-g.ctx.Done():
			g.t.Fatalf("waiting for the compact publication: %v (status %+v)", g.ctx.Err(), st.Compact)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compactClient syncs a rig's compact publication over HTTPS.
type compactClient struct {
	t            *testing.T
	hc           *http.Client
	notification string
	trust        compact.Trust
	state        *compact.State
	snapshotURI  string
	fromSnapshot bool
}

func newCompactClient(t *testing.T, g *rig, s *compact.Signer) *compactClient {
	ca, err := os.ReadFile(g.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	pub, err := compact.MarshalPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := compact.ParseKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &compactClient{t: t, hc: &http.Client{Transport: tr, Timeout: time.Minute}, notification: g.public + "rrdp/compact/notification.bin",
		trust: compact.Trust{Keys: keys}}
}

func (c *compactClient) get(u string) (int, []byte) {
	c.t.Helper()
	resp, err := c.hc.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// sync brings the client to the notification served.
func (c *compactClient) sync(what string) (*compact.State, *rpki.Result) {
	c.t.Helper()
	code, nb := c.get(c.notification)
	if code != http.StatusOK {
		c.t.Fatalf("%s: compact notification: status %d", what, code)
	}
	base, err := url.Parse(c.notification)
	if err != nil {
		c.t.Fatal(err)
	}
	nt, err := compact.ParseNotification(nb, c.trust.Keys)
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	ref, err := base.Parse(nt.Snapshot.Uri)
	if err != nil {
		c.t.Fatal(err)
	}
	c.fromSnapshot = false
	fetch := c.fetcher()
	snap := func(uri string) ([]byte, error) {
		if u, err := base.Parse(uri); err == nil && u.String() == ref.String() {
			c.fromSnapshot = true
		}
		return fetch(uri)
	}
	st, res, err := compact.Sync(c.state, nb, snap, c.trust, time.Now())
	if err != nil {
		c.t.Fatalf("%s: compact sync: %v", what, err)
	}
	c.state, c.snapshotURI = st, ref.String()
	return st, res
}

// fetcher fetches the files a notification names, relative to it.
func (c *compactClient) fetcher() compact.Fetcher {
	return func(uri string) ([]byte, error) {
		base, err := url.Parse(c.notification)
		if err != nil {
			return nil, err
		}
		u, err := base.Parse(uri)
		if err != nil {
			return nil, err
		}
		code, b := c.get(u.String())
		if code != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d", u, code)
		}
		return b, nil
	}
}

// vrpsOfResult returns the VRPs of res, sorted.
func vrpsOfResult(res *rpki.Result) []rpki.VRP {
	out := make([]rpki.VRP, 0, len(res.VRPs))
	for _, v := range res.VRPs {
		out = append(out, v.VRP)
	}
	return rpki.SortVRPs(out)
}

// TestCompactRolloverLean serves a lean compact publication (CA records
// instead of certificates) signed by two keys, as during a key rollover:
// a client trusting either key alone gets the generator's VRPs; after a
// serial a restart continues it without a new serial (a lean group
// rebuilt alone equals the one a whole build makes); a client that
// requires certificates refuses the lean publication.
func TestCompactRolloverLean(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key := func(seed byte) *compact.Signer {
		s, err := compact.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old, next := key(1), key(2)
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Compact: old.With(next), OmitCertificates: true})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	g.waitCompact(func(cp compactState) bool { return cp.upstream == g.f.Head().Serial })
	for _, s := range []*compact.Signer{old, next} {
		c := newCompactClient(t, g, s)
		_, res := c.sync(fmt.Sprintf("trusting key %x", s.KeyIDs()[0][:4]))
		if d := rpki.DiffVRPs(vrpsOfResult(res), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
			t.Fatalf("trusting key %x: the VRPs differ from the generator's:\n%s", s.KeyIDs()[0][:4], d)
		}
	}
	// Advance, so that groups are rebuilt beside groups kept; then a
	// restart continues the lean publication without a new serial.
	if err := g.repo.Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	g.publish()
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	g.waitCompact(func(cp compactState) bool { return cp.upstream == g.f.Head().Serial })
	g.checkRestart(ctx)
	strict := newCompactClient(t, g, old)
	strict.trust.RequireCertificates = true
	_, nb := strict.get(strict.notification)
	if _, _, err := compact.Sync(nil, nb, strict.fetcher(), strict.trust, time.Now()); err == nil {
		t.Fatal("a client requiring certificates accepted a lean publication")
	}
}
