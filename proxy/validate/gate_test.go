package validate_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// gateProfile is small: 1 intermediate and 4 member CAs, 16 ROAs.
var gateProfile = repotest.Profile{Intermediates: 1, Members: 4, ROAs: 16, EEKeys: 2}

var gateRules = validate.Rules{MaxVRPLoss: 0.05, CAInvalid: true}

// TestGate is issue 16's acceptance test of the gate: the origin
// publishes a serial that invalidates half the ROAs. With the gate on,
// rpki-client through the proxy keeps the old VRPs, /status.json and
// /status say why, a repeated attempt costs no validation, and the
// operator's release (POST /validate/release on the admin listener)
// publishes it. With the gate off the serial passes and is reported.
// After it, rpki-client's VRPs equal the proxy's /vrps.json in both.
func TestGate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs rpki-client")
	}
	rp.Require(t, "root", "unshare", "mount", "rpki-client")
	for _, tc := range []struct {
		name string
		gate bool
	}{{"on", true}, {"off", false}} {
		t.Run(tc.name, func(t *testing.T) { testGate(t, tc.gate) })
	}
}

func testGate(t *testing.T, gate bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: validate.Config{Gate: gate, Rules: gateRules}})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := rpki.SortVRPs(g.repo.VRPs())
	g.waitRuns(1)
	if d := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), want, 10); d != "" {
		t.Fatalf("serial 1: /vrps.json differs from the generator's VRPs:\n%s", d)
	}
	if d := rpki.DiffVRPs(g.rpkiClient("serial 1"), want, 10); d != "" {
		t.Fatalf("serial 1: rpki-client's VRPs differ from the generator's:\n%s", d)
	}

	broken := g.breakHalf()
	t.Logf("serial 2 breaks %d publication points: %v", len(broken), broken)
	_, err := g.f.Sync(ctx)
	if gate {
		var he *validate.HoldError
		if !errors.As(err, &he) || !errors.Is(err, validate.ErrHeld) {
			t.Fatalf("sync of the broken serial: got %v, want a HoldError", err)
		}
		if he.Repo != "repo" || he.Serial != 2 || len(he.Why) != 2 {
			t.Errorf("hold: got %+v, want repo serial 2 breaking both rules", he)
		}
		first := g.v.Status()
		// The follower offers the serial again at its next poll: a lookup,
		// no validation.
		if _, err := g.f.Sync(ctx); !errors.Is(err, validate.ErrHeld) {
			t.Fatalf("second sync: got %v, want ErrHeld", err)
		}
		st := g.v.Status()
		if len(st.Holds) != 1 || st.Holds[0].Attempts <= first.Holds[0].Attempts || len(st.Runs) != len(first.Runs) {
			t.Errorf("after a second attempt: got holds %+v and %d runs, want one hold with more attempts and %d runs", st.Holds, len(st.Runs), len(first.Runs))
		}
		if got := st.Runs[0]; got.Outcome != "held" || got.Removed*2 < len(want) || got.VRPs != len(want) {
			t.Errorf("held run: got %+v, want outcome held, at least %d removed, %d VRPs still served", got, len(want)/2, len(want))
		}
		checkStatus(t, g)
		if d := rpki.DiffVRPs(g.rpkiClient("serial 2 held"), want, 10); d != "" {
			t.Fatalf("serial 2 held: rpki-client's VRPs differ from serial 1's:\n%s", d)
		}
		if d := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), want, 10); d != "" {
			t.Fatalf("serial 2 held: /vrps.json differs from serial 1's:\n%s", d)
		}
		g.do("GET", "validate/release?repo=repo", 405)
		g.do("POST", "validate/release?repo=other", 404)
		if msg := string(g.do("POST", "validate/release?repo=repo", 200)); !strings.Contains(msg, "released repo serial 2") {
			t.Errorf("release: got %q", msg)
		}
		g.do("POST", "validate/release?repo=repo", 404) // nothing held any more
		// The follower catches up with the store.
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatalf("sync after the release: %v", err)
		}
		if s := g.f.Stats(); s.Serial != 2 {
			t.Errorf("follower after the release: serial %d, want 2", s.Serial)
		}
	} else {
		if err != nil {
			t.Fatalf("sync of the broken serial without the gate: %v", err)
		}
		g.waitRuns(2)
	}

	// The broken serial is served: rpki-client sees what the proxy's
	// validator reports.
	after := vrpsOf(t, g.get("vrps.json"))
	if len(after)*2 > len(want) {
		t.Errorf("after serial 2: %d VRPs of %d, want at most half", len(after), len(want))
	}
	if d := rpki.DiffVRPs(g.rpkiClient("serial 2 served"), after, 10); d != "" {
		t.Errorf("serial 2 served: rpki-client's VRPs differ from the proxy's /vrps.json:\n%s", d)
	}
	st := g.v.Status()
	run := st.Runs[0]
	wantOutcome := map[bool]string{true: "released", false: "observed"}[gate]
	if run.Outcome != wantOutcome || run.Removed != len(want)-len(after) || run.Added != 0 || len(run.NewlyFailing) != len(broken) {
		t.Errorf("the run of serial 2: got %+v, want outcome %s, %d removed, none added, %d CAs newly failing", run, wantOutcome, len(want)-len(after), len(broken))
	}
	if !gate && len(run.Broke) != 2 {
		t.Errorf("observe mode: the run of serial 2 broke %q, want both rules reported", run.Broke)
	}
	if st.FailingCAs != len(broken) || len(st.Holds) != 0 {
		t.Errorf("status after serial 2: %d failing CAs and holds %+v, want %d and none", st.FailingCAs, st.Holds, len(broken))
	}
	for _, f := range st.Failing {
		if !strings.Contains(f.Err, "hash") {
			t.Errorf("failing CA %s: %q, want a hash mismatch", f.URI, f.Err)
		}
	}
}

// checkStatus checks that /status.json, /status and /metrics say why
// serial 2 is held.
func checkStatus(t *testing.T, g *rig) {
	t.Helper()
	var doc struct {
		Validation struct {
			Mode  string `json:"mode"`
			VRPs  int    `json:"vrps"`
			Holds []struct {
				Repo    string   `json:"repo"`
				Serial  uint64   `json:"serial"`
				Why     []string `json:"why"`
				Removed int      `json:"vrps_removed"`
			} `json:"holds"`
		} `json:"validation"`
	}
	if err := json.Unmarshal(g.get("status.json"), &doc); err != nil {
		t.Fatal(err)
	}
	v := doc.Validation
	if v.Mode != "gate" || len(v.Holds) != 1 || v.Holds[0].Repo != "repo" || v.Holds[0].Serial != 2 || len(v.Holds[0].Why) != 2 ||
		!strings.HasPrefix(v.Holds[0].Why[0], "removes ") || !strings.HasPrefix(v.Holds[0].Why[1], "makes ") {
		t.Errorf("status.json validation: got %+v, want serial 2 of repo held for both rules", v)
	}
	page := string(g.get("status"))
	for _, s := range []string{"Held serial", "rrdp-proxy release repo", v.Holds[0].Why[0]} {
		if !strings.Contains(page, s) {
			t.Errorf("/status: no %q", s)
		}
	}
	metrics := string(g.get("metrics"))
	for _, s := range []string{`rrdp_proxy_validate_holding{repo="repo"} 1`, "rrdp_proxy_validate_held_total 1", "rrdp_proxy_validate_vrps "} {
		if !strings.Contains(metrics, s) {
			t.Errorf("/metrics: no %q", s)
		}
	}
}

// failingHeads is a store whose PutHead fails while fail is set, as a
// cache without a disk tier does for a head whose blobs it evicted.
type failingHeads struct {
	follow.Store
	fail atomic.Bool
}

func (s *failingHeads) PutHead(ctx context.Context, repo string, h *follow.Head) error {
	if s.fail.Load() {
		return errors.New("blob missing")
	}
	return s.Store.PutHead(ctx, repo, h)
}

// TestReleaseLater: a release the store cannot honour at once leaves the
// serial released, still unserved, and the follower's next attempt
// publishes it (validated by Run).
func TestReleaseLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	flaky := &failingHeads{}
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: validate.Config{Gate: true, Rules: gateRules},
		Wrap: func(s follow.Store) follow.Store { flaky.Store = s; return flaky }})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	g.breakHalf()
	if _, err := g.f.Sync(ctx); !errors.Is(err, validate.ErrHeld) {
		t.Fatalf("broken serial: got %v, want ErrHeld", err)
	}
	flaky.fail.Store(true)
	msg, err := g.v.Release(ctx, "repo")
	if err != nil || !strings.Contains(msg, "not stored now") {
		t.Fatalf("release: got %q, %v; want a release not stored now", msg, err)
	}
	if h := g.cache.Head("repo"); h.Serial != 1 {
		t.Errorf("after the release: the cache serves serial %d, want 1", h.Serial)
	}
	if _, err := g.v.Release(ctx, "repo"); !errors.Is(err, validate.ErrNotHeld) {
		t.Errorf("second release: got %v, want ErrNotHeld", err)
	}
	flaky.fail.Store(false)
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatalf("the follower's next attempt: %v", err)
	}
	if h := g.cache.Head("repo"); h.Serial != 2 {
		t.Errorf("after the next attempt: the cache serves serial %d, want 2", h.Serial)
	}
	for g.v.Status().VRPs*2 > len(g.repo.VRPs()) {
		select {
		case <-ctx.Done():
			t.Fatalf("the released serial is never validated: status %+v", g.v.Status())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if st := g.v.Status(); len(st.Holds) != 0 || st.Released != 1 {
		t.Errorf("status: holds %+v, %d released; want none and 1", st.Holds, st.Released)
	}
}

// TestGateBlamesNotTime: the gate compares a serial with the state served
// validated at the same instant. When everything served has expired since
// the last run, a new serial (expired too) removes nothing against that
// and is published; the expiry is recorded as its own run.
func TestGateBlamesNotTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var later atomic.Bool
	now := func() time.Time {
		if later.Load() {
			return time.Now().AddDate(1, 0, 0)
		}
		return time.Now()
	}
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: validate.Config{Gate: true, Rules: gateRules, Interval: time.Hour, Now: now}})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	later.Store(true)
	if err := g.repo.Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	g.publish()
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatalf("a serial after everything expired: %v, want it published", err)
	}
	st := g.v.Status()
	if len(st.Runs) < 3 || st.Runs[0].Outcome != "published" || st.Runs[0].Removed != 0 || st.Runs[1].Outcome != "revalidated" || st.Runs[1].VRPs != 0 {
		t.Errorf("runs %+v, want the expiry revalidated, then serial 2 published removing nothing", st.Runs)
	}
}
