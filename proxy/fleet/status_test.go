package fleet

import (
	"context"
	"testing"
)

// TestReporter: on a fleet of two nodes, the holder's Status is its own
// follower's, and the watcher's Reporter shows the holder's name and the
// counters it shared through Redis.
func TestReporter(t *testing.T) {
	e := newEnv(t)
	a, b := e.start("a"), e.start("b")
	var reps []*Reporter
	for _, n := range []*node{a, b} {
		p := NewReporter(n.Node)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		reps = append(reps, p)
	}
	e.waitSerial(e.repo.Info().Serial)
	var holder, watcher int
	e.waitFor("one holder, one watcher", func() bool {
		ra, rb := a.repoStats().Role, b.repoStats().Role
		switch {
		case ra == Holder && rb == Watcher:
			holder, watcher = 0, 1
		case rb == Holder && ra == Watcher:
			holder, watcher = 1, 0
		default:
			return false
		}
		return true
	})
	names := []string{"a", "b"}
	h, ok := reps[holder].Status(e.url)
	if !ok || h.Role != Holder || h.Holder != names[holder] || h.Follow.LastSuccess.IsZero() || !h.Shared.IsZero() || !h.RedisUp {
		t.Errorf("holder's status: %+v", h)
	}
	e.waitFor("the watcher shows the holder's counters", func() bool {
		w, ok := reps[watcher].Status(e.url)
		return ok && w.Role == Watcher && w.Holder == names[holder] && !w.Follow.LastSuccess.IsZero() && !w.Shared.IsZero() && w.Follow.Syncs > 0
	})
	if _, ok := reps[watcher].Status("no-such-repo"); ok {
		t.Error("Status of a repository the node does not follow: ok")
	}
	if local, _ := [...]*node{a, b}[watcher].Status(e.url); local.Follow.Syncs != 0 || local.Holder != "" {
		t.Errorf("the watcher's own Status holds a follower's counters or a holder: %+v", local)
	}
}
