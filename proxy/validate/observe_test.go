package validate_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// TestObserveIncremental follows a generated repository through serials
// in observe mode: the VRPs of every state equal the generator's; a state
// reached by deltas is read from them (not from its snapshot) and reuses
// the unchanged publication points; a fresh Validator given the same head
// (which reads the snapshot and checks everything) gets the same VRPs; a
// session reset reads the snapshot.
func TestObserveIncremental(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: validate.Config{Rules: gateRules}})
	sync := func(what string, runs int) {
		t.Helper()
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		g.waitRuns(runs)
		if d := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
			t.Fatalf("%s: /vrps.json differs from the generator's VRPs:\n%s", what, d)
		}
	}
	sync("serial 1", 1)
	now := time.Now().UTC().Truncate(time.Second)
	if err := g.repo.Advance(now.Add(time.Minute), 3); err != nil {
		t.Fatal(err)
	}
	g.publish()
	sync("serial 4", 2)
	st := g.v.Status()
	if n := validate.DeltaLoads(g.v); n != 1 {
		t.Errorf("serial 4: %d states read from deltas, want 1", n)
	}
	if st.Reused == 0 || st.Revalidated == 0 || st.Runs[0].Serials[0] != "repo@4" {
		t.Errorf("serial 4: %d points reused, %d checked, run %+v; want some of each, for repo@4", st.Reused, st.Revalidated, st.Runs[0])
	}
	if st.Runs[0].Added == 0 || st.Runs[0].Removed == 0 {
		t.Errorf("serial 4: run %+v, want VRPs added and removed (the generator's churn)", st.Runs[0])
	}

	// A fresh Validator on the same head reads the snapshot.
	fresh, err := validate.New(validate.Config{TALs: g.vc.TALs, Open: g.vc.Open})
	if err != nil {
		t.Fatal(err)
	}
	fresh.Seed("repo", "repo", g.cache.Head("repo"))
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fresh.Run(fctx) }()
	for len(fresh.Status().Runs) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	<-done
	var a, b bytes.Buffer
	if err := g.v.WriteVRPs(&a); err != nil {
		t.Fatal(err)
	}
	if err := fresh.WriteVRPs(&b); err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(vrpsOf(t, b.Bytes()), vrpsOf(t, a.Bytes()), 10); d != "" {
		t.Errorf("a fresh validator of the same head differs from the incremental one:\n%s", d)
	}
	if validate.DeltaLoads(fresh) != 0 {
		t.Error("the fresh validator read deltas")
	}

	if err := g.repo.ResetSession(now.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	g.publish()
	sync("after a session reset", 3)
	if n := validate.DeltaLoads(g.v); n != 1 {
		t.Errorf("after a session reset: %d states read from deltas, want still 1", n)
	}
}

// TestRevalidateInTime: without new serials, Run revalidates the state
// served every Interval, so that objects that expire are noticed: a clock
// moved past every manifest's nextUpdate empties the VRPs, and the run is
// recorded as "revalidated", with what it removed and the CAs that now
// fail.
func TestRevalidateInTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var later atomic.Bool
	now := func() time.Time {
		if later.Load() {
			return time.Now().AddDate(1, 0, 0)
		}
		return time.Now()
	}
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: validate.Config{Interval: 50 * time.Millisecond, Now: now}})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	g.waitRuns(1)
	if st := g.v.Status(); st.VRPs != len(rpki.SortVRPs(g.repo.VRPs())) || st.FailingCAs != 0 {
		t.Fatalf("serial 1: %d VRPs, %d failing CAs; want %d and none", st.VRPs, st.FailingCAs, len(g.repo.VRPs()))
	}
	later.Store(true)
	g.waitRuns(2)
	st := g.v.Status()
	run := st.Runs[0]
	if run.Outcome != "revalidated" || len(run.Serials) != 0 || run.VRPs != 0 || run.Removed == 0 || len(run.NewlyFailing) == 0 {
		t.Errorf("a year later: run %+v, want revalidated, no serial, every VRP removed, CAs newly failing", run)
	}
	if st.VRPs != 0 || st.FailingCAs == 0 {
		t.Errorf("a year later: %d VRPs, %d failing CAs; want none and some", st.VRPs, st.FailingCAs)
	}
}
