package validate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
)

// TestReleasedElsewhere: Config.Released, a fleet's release queued on
// another node, is asked when the gate holds a serial and at each attempt
// of it; true publishes the serial as Release does. Seed (a head
// installed from elsewhere) and Drop (the follower stopped) forget the
// hold, and the next attempt is judged afresh.
func TestReleasedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		// early: released before the gate first judges the serial (on
		// the node that held it before a failover).
		early bool
	}{{"at an attempt", false}, {"at the first judgement", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var released atomic.Bool
			var asked atomic.Int64
			vc := validate.Config{Gate: true, Rules: gateRules, Interval: time.Hour,
				Released: func(_ context.Context, key string, h *follow.Head) (string, bool) {
					asked.Add(1)
					if key != "repo" || h.Serial != 2 {
						t.Errorf("Released asked about %s serial %d, want repo serial 2", key, h.Serial)
					}
					return "node-b", released.Load()
				}}
			g := newRig(t, ctx, rigConfig{Profile: gateProfile, Validate: vc})
			if _, err := g.f.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if n := asked.Load(); n != 0 {
				t.Errorf("Released asked %d times about a serial not held", n)
			}
			g.breakHalf()
			held := func(what string) {
				t.Helper()
				if _, err := g.f.Sync(ctx); !errors.Is(err, validate.ErrHeld) {
					t.Fatalf("%s: got %v, want ErrHeld", what, err)
				}
				if st := g.v.Status(); len(st.Holds) != 1 {
					t.Fatalf("%s: holds %+v, want one", what, st.Holds)
				}
			}
			if !tc.early {
				held("the broken serial")
				held("a second attempt")
				if n := asked.Load(); n != 2 {
					t.Errorf("Released asked %d times after two attempts, want 2", n)
				}
				// The served state seeded again, as a fleet's node installs it:
				// the hold goes, and the next attempt is judged afresh.
				g.v.Seed("repo", "repo", g.cache.Head("repo"))
				if st := g.v.Status(); len(st.Holds) != 0 {
					t.Errorf("after Seed: holds %+v, want none", st.Holds)
				}
				held("an attempt after Seed")
				g.v.Drop("repo")
				if st := g.v.Status(); len(st.Holds) != 0 {
					t.Errorf("after Drop: holds %+v, want none", st.Holds)
				}
				held("an attempt after Drop")
				if st := g.v.Status(); st.Held != 3 || st.Released != 0 {
					t.Errorf("held %d, released %d; want 3 holds and no release", st.Held, st.Released)
				}
			}
			released.Store(true)
			if _, err := g.f.Sync(ctx); err != nil {
				t.Fatalf("sync once released elsewhere: %v", err)
			}
			if h := g.cache.Head("repo"); h.Serial != 2 {
				t.Errorf("the cache serves serial %d, want 2", h.Serial)
			}
			st := g.v.Status()
			if len(st.Holds) != 0 || st.Released != 1 || st.Runs[0].Outcome != "released" || st.VRPs*2 > len(g.repo.VRPs()) {
				t.Errorf("status: holds %+v, %d released, last run %+v, %d VRPs; want none held, 1 released, a released run, at most half of %d VRPs",
					st.Holds, st.Released, st.Runs[0], st.VRPs, len(g.repo.VRPs()))
			}
			if _, err := g.v.Release(ctx, "repo"); !errors.Is(err, validate.ErrNotHeld) {
				t.Errorf("an operator's release after: got %v, want ErrNotHeld", err)
			}
		})
	}
}
