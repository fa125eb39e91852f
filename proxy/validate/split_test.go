package validate_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// splitProfile has four members of four ROAs each: two publish in the
// second repository, and one of them holds about a quarter of the VRPs.
var splitProfile = repotest.Profile{Intermediates: 1, Members: 4, ROAs: 16, EEKeys: 2}

// Base URLs of the split tree: the rigs follow copies of it, so no
// relying party fetches from them.
const (
	splitPublicA = "https://rrdp-a.example.net/"
	splitPublicB = "https://rrdp-b.example.net/"
)

// splitRig is a rig following the first repository of a tree split over
// two (repotest's Config.Split), with a second follower for the second
// repository publishing through the same Validator into the same cache:
// a node following a parent's repository and a delegated member's.
type splitRig struct {
	*rig
	repo    *repotest.Repo // the generator's, on the rig's directory
	originB *rp.Origin
	dirB    string
	fB      *follow.Follower
}

func newSplitRig(t *testing.T, ctx context.Context, vc validate.Config) *splitRig {
	t.Helper()
	src := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := repotest.Create(src, repotest.Config{Profile: splitProfile, Seed: 9, BaseURL: splitPublicA, Split: splitPublicB}, now, repotest.Options{KeyCache: keyCache}); err != nil {
		t.Fatal(err)
	}
	g := &splitRig{rig: newRig(t, ctx, rigConfig{From: src, Validate: vc})}
	var err error
	if g.repo, err = repotest.Open(g.dir, repotest.Options{KeyCache: keyCache}); err != nil {
		t.Fatal(err)
	}
	g.dirB = filepath.Join(g.dir, repotest.SplitDir)
	if g.originB, err = rp.NewOrigin(rp.OriginConfig{Dir: g.dirB, PKI: g.pki}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.originB.Close() })
	g.publishB()
	ca, err := os.ReadFile(g.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	notif := g.originB.URL() + "rrdp/origin-notification.xml"
	base, err := proxy.BaseURI(proxy.ModeReverse, notif, splitPublicB)
	if err != nil {
		t.Fatal(err)
	}
	if g.fB, err = follow.New(follow.Config{URL: notif, Client: client, Store: g.v.Store("delegated", g.cache), Repo: "delegated", Base: base}); err != nil {
		t.Fatal(err)
	}
	return g
}

// publishB writes the second origin's view of its notification.
func (g *splitRig) publishB() {
	g.t.Helper()
	n := filepath.Join(g.dirB, "rrdp", "notification.xml")
	if err := rp.Rewrite(filepath.Join(g.dirB, "rrdp", "origin-notification.xml"), n, splitPublicB, g.originB.URL()); err != nil {
		g.t.Fatal(err)
	}
}

// removeDelegated removes a delegated member CA with ROAs from the tree
// (repotest's RemoveCA: a serial in each repository) and returns the VRPs
// it had.
func (g *splitRig) removeDelegated() (repotest.CA, []rpki.VRP) {
	g.t.Helper()
	before := rpki.SortVRPs(g.repo.VRPs())
	var member repotest.CA
	for _, ca := range g.repo.CAs() {
		if ca.Delegated && ca.ROAs > 0 {
			member = ca
			break
		}
	}
	if member.ID == 0 {
		g.t.Fatal("no delegated member with ROAs")
	}
	if err := g.repo.RemoveCA(time.Now().UTC().Truncate(time.Second), member.ID); err != nil {
		g.t.Fatal(err)
	}
	g.publish()
	g.publishB()
	after := rpki.SortVRPs(g.repo.VRPs())
	var gone []rpki.VRP
	for _, v := range before {
		if !slices.Contains(after, v) {
			gone = append(gone, v)
		}
	}
	if len(gone) == 0 {
		g.t.Fatalf("CA %d had no VRP of its own", member.ID)
	}
	return member, gone
}

// sync syncs f and fails the test on an error.
func (g *splitRig) sync(what string, f *follow.Follower) {
	g.t.Helper()
	if _, err := f.Sync(g.ctx); err != nil {
		g.t.Fatalf("%s: %v", what, err)
	}
}

// served returns the VRPs of /vrps.json.
func (g *splitRig) served() []rpki.VRP { return vrpsOf(g.t, g.get("vrps.json")) }

// aloneVRPs validates, with a fresh Validator, the head the cache holds
// for the repository with key alone and returns its VRPs.
func (g *splitRig) aloneVRPs(key string) []rpki.VRP {
	g.t.Helper()
	v, err := validate.New(validate.Config{TALs: g.vc.TALs, Open: g.vc.Open})
	if err != nil {
		g.t.Fatal(err)
	}
	v.Seed(key, key, g.cache.Head(key))
	ctx, stop := context.WithCancel(g.ctx)
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	for len(v.Status().Runs) == 0 {
		select {
		case <-g.ctx.Done():
			g.t.Fatal(g.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	<-done
	var b bytes.Buffer
	if err := v.WriteVRPs(&b); err != nil {
		g.t.Fatal(err)
	}
	return vrpsOf(g.t, b.Bytes())
}

// TestSplitTree follows the two repositories of one tree in observe
// mode. The second repository alone validates nothing (its CAs hang off
// the first's); both give the generator's VRPs, more than the first
// alone: the VRPs span them. Then the first repository publishes a serial
// that revokes and withdraws a delegated member's certificate: that
// serial alone, the second repository unchanged, removes the member's
// VRPs, which the second repository still publishes. The second's own
// serial (the member's point withdrawn) changes nothing more.
func TestSplitTree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := newSplitRig(t, ctx, validate.Config{})
	want := rpki.SortVRPs(g.repo.VRPs())

	g.sync("the second repository", g.fB)
	g.waitRuns(1)
	if st := g.v.Status(); st.VRPs != 0 || st.Runs[0].Serials[0] != "delegated@1" {
		t.Fatalf("the second repository alone: %d VRPs, run %+v; want none, for delegated@1", st.VRPs, st.Runs[0])
	}
	if got := g.aloneVRPs("delegated"); len(got) != 0 {
		t.Errorf("the second repository alone, fresh validator: %d VRPs, want none", len(got))
	}

	g.sync("the first repository", g.f)
	g.waitRuns(2)
	if d := rpki.DiffVRPs(g.served(), want, 10); d != "" {
		t.Fatalf("both repositories: /vrps.json differs from the generator's VRPs:\n%s", d)
	}
	st := g.v.Status()
	if st.FailingCAs != 0 || st.Runs[0].Serials[0] != "repo@1" || st.Runs[0].Added != len(want) {
		t.Errorf("both repositories: %d failing CAs, run %+v; want none, repo@1 adding all %d VRPs", st.FailingCAs, st.Runs[0], len(want))
	}
	onlyA := g.aloneVRPs("repo")
	if len(onlyA) == 0 || len(onlyA) >= len(want) {
		t.Errorf("the first repository alone: %d VRPs, want some and fewer than the tree's %d", len(onlyA), len(want))
	}

	member, gone := g.removeDelegated()
	t.Logf("serial 2 of each repository removes CA %d (%s) and its %d VRPs", member.ID, member.URI, len(gone))
	g.sync("the first repository's serial 2", g.f)
	g.waitRuns(3)
	st = g.v.Status()
	run := st.Runs[0]
	if !slices.Equal(run.Serials, []string{"repo@2"}) || run.Removed != len(gone) || run.Added != 0 {
		t.Errorf("the first repository's serial 2: run %+v, want repo@2 removing the %d VRPs of CA %d", run, len(gone), member.ID)
	}
	got := g.served()
	if d := rpki.DiffVRPs(got, rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
		t.Errorf("the first repository's serial 2: /vrps.json differs from the generator's VRPs:\n%s", d)
	}
	for _, v := range gone {
		if slices.Contains(got, v) {
			t.Errorf("VRP %v of the removed CA is still served", v)
		}
	}
	if h := g.cache.Head("delegated"); h == nil || h.Serial != 1 {
		t.Fatalf("the second repository moved: head %+v", h)
	}

	g.sync("the second repository's serial 2", g.fB)
	g.waitRuns(4)
	run = g.v.Status().Runs[0]
	if !slices.Equal(run.Serials, []string{"delegated@2"}) || run.Removed != 0 || run.Added != 0 {
		t.Errorf("the second repository's serial 2: run %+v, want delegated@2 changing no VRP", run)
	}
	if d := rpki.DiffVRPs(g.served(), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
		t.Errorf("both at serial 2: /vrps.json differs from the generator's VRPs:\n%s", d)
	}
}

// TestSplitGate: with the gate on (max_vrp_loss 5%), the first
// repository's serial that removes a delegated member's certificate drops
// VRPs published in the second repository, and is held; so is the second
// repository's serial that withdraws the member's point, judged against
// the state served. Both repositories keep serving serial 1 and the VRPs
// stay. Released by the operator, they pass.
func TestSplitGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := newSplitRig(t, ctx, validate.Config{Gate: true, Rules: validate.Rules{MaxVRPLoss: 0.05}})
	want := rpki.SortVRPs(g.repo.VRPs())
	g.sync("the first repository", g.f)
	g.sync("the second repository", g.fB)
	if d := rpki.DiffVRPs(g.served(), want, 10); d != "" {
		t.Fatalf("serial 1: /vrps.json differs from the generator's VRPs:\n%s", d)
	}

	member, gone := g.removeDelegated()
	if len(gone)*20 <= len(want) {
		t.Fatalf("CA %d has %d of %d VRPs: not enough for the rule", member.ID, len(gone), len(want))
	}
	for _, c := range []struct {
		name, key string
		f         *follow.Follower
	}{{"the first repository's serial 2", "repo", g.f}, {"the second repository's serial 2", "delegated", g.fB}} {
		_, err := c.f.Sync(ctx)
		var he *validate.HoldError
		if !errors.As(err, &he) || he.Repo != c.key || he.Serial != 2 {
			t.Fatalf("%s: got %v, want a HoldError for %s serial 2", c.name, err, c.key)
		}
		if h := g.cache.Head(c.key); h == nil || h.Serial != 1 {
			t.Errorf("%s: the cache serves %+v, want serial 1", c.name, h)
		}
		if d := rpki.DiffVRPs(g.served(), want, 10); d != "" {
			t.Errorf("%s held: /vrps.json differs from serial 1's:\n%s", c.name, d)
		}
		if run := g.v.Status().Runs[0]; run.Outcome != "held" || run.Removed != len(gone) {
			t.Errorf("%s: run %+v, want held, %d VRPs removed", c.name, run, len(gone))
		}
	}
	if st := g.v.Status(); len(st.Holds) != 2 {
		t.Errorf("%d holds, want 2: %+v", len(st.Holds), st.Holds)
	}

	for _, key := range []string{"repo", "delegated"} {
		if _, err := g.v.Release(ctx, key); err != nil {
			t.Fatalf("release %s: %v", key, err)
		}
	}
	g.sync("the first repository after the release", g.f)
	g.sync("the second repository after the release", g.fB)
	for _, key := range []string{"repo", "delegated"} {
		if h := g.cache.Head(key); h == nil || h.Serial != 2 {
			t.Errorf("after the release: %s at %+v, want serial 2", key, h)
		}
	}
	if d := rpki.DiffVRPs(g.served(), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
		t.Errorf("after the release: /vrps.json differs from the generator's VRPs:\n%s", d)
	}
}
