package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

// validating wires a Validator into every node e starts, as serve does:
// the followers publish through its Store (Config.Wrap), the heads the
// node installs are seeded (Installed), a stopped follower's hold is
// dropped (Stopped), and the gate asks the node about the releases queued
// in Redis (Node.Released). Each node runs a Reporter too, which shares
// the holder's follower, and so its hold. The gate holds any serial that
// removes a VRP. It returns the Validator of a node by name.
func (e *env) validating(gate bool) func(name string) *validate.Validator {
	t := e.t
	t.Helper()
	tal, err := os.ReadFile(filepath.Join(e.dir, repotest.TALPath))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := rpki.ParseTAL(tal)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile(filepath.Join(e.dir, repotest.TACertPath))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	vs := map[string]*validate.Validator{}
	e.prepare = func(name string, cfg *Config) func(*Node) func(context.Context) {
		var n *Node // set once New returns, before Run
		v, err := validate.New(validate.Config{
			TALs: []rpki.TrustAnchor{{Name: "ta", TAL: parsed, Cert: cert}},
			Open: func(ctx context.Context, f follow.File) ([]byte, error) {
				return cache.ReadFile(ctx, &f, n.Cache().Blob)
			},
			Gate:     gate,
			Rules:    validate.Rules{MaxVRPLoss: 0.0001},
			Released: func(ctx context.Context, key string, h *follow.Head) (string, bool) { return n.Released(ctx, key, h) },
			Interval: time.Hour,
			Node:     name,
			Logger:   logger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Wrap = func(repo string, next follow.Store) follow.Store { return v.Store(repo, next) }
		cfg.Installed = func(repo string, h *follow.Head) { v.Seed(repo, repo, h) }
		cfg.Stopped = v.Drop
		mu.Lock()
		vs[name] = v
		mu.Unlock()
		return func(made *Node) func(context.Context) {
			n = made
			return func(ctx context.Context) {
				var wg sync.WaitGroup
				wg.Go(func() { v.Run(ctx) })
				wg.Go(func() { NewReporter(made).Run(ctx) })
				wg.Wait()
			}
		}
	}
	return func(name string) *validate.Validator {
		mu.Lock()
		defer mu.Unlock()
		return vs[name]
	}
}

// waitVRPs waits until the Validator of every running node reports the
// generator's VRPs (its /vrps.json), and checks that the nodes' outputs
// agree.
func (e *env) waitVRPs(valid func(string) *validate.Validator, what string) {
	e.t.Helper()
	want := e.repo.VRPs()
	var diff string
	e.waitFor(what+": every node's VRPs are the generator's", func() bool {
		for _, nd := range e.alive() {
			var b strings.Builder
			if err := valid(nd.Name()).WriteVRPs(&b); err != nil {
				diff = nd.Name() + ": " + err.Error()
				return false
			}
			got, err := rpki.ParseVRPJSON([]byte(b.String()))
			if err != nil {
				e.t.Fatalf("%s: %v", nd.Name(), err)
			}
			if diff = rpki.DiffVRPs(got, want, 5); diff != "" {
				diff = nd.Name() + ": " + diff
				return false
			}
		}
		return true
	})
	if diff != "" {
		e.t.Fatal(diff)
	}
}

// advanceRemoving makes the origin publish one serial that removes VRPs,
// which the gate's rule holds.
func (e *env) advanceRemoving() uint64 {
	e.t.Helper()
	before := e.repo.VRPs()
	serial := e.advance(1)
	if d := rpki.DiffVRPs(e.repo.VRPs(), before, 0); !strings.Contains(d, " missing") || strings.Contains(d, " 0 missing") {
		e.t.Fatalf("serial %d removes no VRP, the test needs one: %s", serial, d)
	}
	return serial
}

// waitHold waits until node nd's gate holds serial.
func (e *env) waitHold(v *validate.Validator, nd *node, serial uint64) {
	e.t.Helper()
	e.waitFor(nd.Name()+" holds serial", func() bool {
		st := v.Status()
		return len(st.Holds) == 1 && st.Holds[0].Serial == serial
	})
}

// redisSerial returns the serial of Redis's head.
func (e *env) redisSerial(nd *node) uint64 {
	e.t.Helper()
	h, err := nd.rs.Head(context.Background(), e.url)
	if err != nil || h == nil {
		e.t.Fatalf("redis head: %v, %v", h, err)
	}
	return h.Serial
}

// TestFleetGate: two nodes validating with the gate on. A serial that
// breaks the rule is held by the holder: Redis keeps the old head and both
// nodes serve the old serial. A release asked of the other node is queued
// in Redis; the holder publishes the serial, and both nodes serve and
// validate it. Then the holder dies with a serial held: the node taking
// over holds it too, and a release queued before the failover is honoured
// by it.
func TestFleetGate(t *testing.T) {
	e := newEnv(t)
	e.watch()
	valid := e.validating(true)
	e.start("node-a")
	e.start("node-b")
	first := e.repo.Info().Serial
	e.waitSerial(first)
	holder := e.oneHolder()
	var other *node
	for _, nd := range e.alive() {
		if nd != holder {
			other = nd
		}
	}
	e.waitVRPs(valid, "serial 1")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := other.RequestRelease(ctx, e.url); !errors.Is(err, ErrNotHeld) {
		t.Errorf("release with nothing held: got %v, want ErrNotHeld", err)
	}

	second := e.advanceRemoving()
	e.waitHold(valid(holder.Name()), holder, second)
	if got := e.redisSerial(holder); got != first {
		t.Errorf("redis serves serial %d while %d is held, want %d", got, second, first)
	}
	e.waitSerial(first)
	if st := valid(other.Name()).Status(); len(st.Holds) != 0 {
		t.Errorf("%s, not the holder, holds %+v", other.Name(), st.Holds)
	}

	// The release, asked of the node that does not hold the lease: it
	// names the serial once the holder's Reporter shared its hold.
	var msg string
	e.waitFor("the release queued through "+other.Name(), func() bool {
		var err error
		msg, err = other.RequestRelease(ctx, e.url)
		if err != nil && !errors.Is(err, ErrNotHeld) {
			t.Fatal(err)
		}
		return err == nil
	})
	t.Logf("release through %s: %s", other.Name(), msg)
	if !strings.Contains(msg, "queued") || !strings.Contains(msg, holder.Name()) {
		t.Errorf("release answer %q, want it queued for %s", msg, holder.Name())
	}
	e.waitSerial(second)
	if got := e.redisSerial(holder); got != second {
		t.Errorf("redis serves serial %d after the release, want %d", got, second)
	}
	e.waitVRPs(valid, "serial 2 released")
	if st := valid(holder.Name()).Status(); st.Released != 1 || len(st.Holds) != 0 {
		t.Errorf("holder after the release: %d released, holds %+v; want 1 and none", st.Released, st.Holds)
	}
	if got, err := holder.rs.ReleaseRequest(ctx, e.url); err != nil || got != nil {
		t.Errorf("the release request after it was honoured: %q, %v; want it taken", got, err)
	}

	// Failover with a serial held: the node taking over holds it too.
	third := e.advanceRemoving()
	e.waitHold(valid(holder.Name()), holder, third)
	e.waitFor("the hold shared", func() bool { return e.sharedHolding(other).Serial == third })
	holder.kill()
	next := e.oneHolder()
	if next != other {
		t.Fatalf("%s took over, want %s", next.Name(), other.Name())
	}
	e.waitHold(valid(next.Name()), next, third)
	if got := e.redisSerial(next); got != second {
		t.Errorf("redis serves serial %d after the failover, want %d (the third held again)", got, second)
	}
	e.waitSerial(second)
	if st := valid(next.Name()).Status(); len(st.Runs) == 0 || st.Runs[0].Outcome != "held" {
		t.Errorf("the new holder's last run: %+v, want held", st.Runs)
	}
	// A new node joins, and the release asked of it reaches the holder.
	late := e.start("node-c")
	e.waitSerial(second)
	e.waitFor("the release queued through "+late.Name(), func() bool {
		_, err := late.RequestRelease(ctx, e.url)
		return err == nil
	})
	e.waitSerial(third)
	e.waitVRPs(valid, "serial 3 released")

	// A release queued while the holder is dead, before the failover:
	// the node taking over honours it when it first holds the serial.
	fourth := e.advanceRemoving()
	e.waitHold(valid(next.Name()), next, fourth)
	e.waitFor("the hold shared", func() bool { return e.sharedHolding(late).Serial == fourth })
	next.kill()
	if msg, err := late.RequestRelease(ctx, e.url); err != nil {
		t.Fatalf("release through %s with the holder dead: %v", late.Name(), err)
	} else {
		t.Logf("release with the holder dead: %s", msg)
	}
	if last := e.oneHolder(); last != late {
		t.Fatalf("%s took over, want %s", last.Name(), late.Name())
	}
	e.waitSerial(fourth)
	e.waitVRPs(valid, "serial 4 released at the failover")
	if st := valid(late.Name()).Status(); st.Released != 1 || len(st.Runs) < 2 || st.Runs[0].Outcome != "released" || st.Runs[1].Outcome != "held" {
		t.Errorf("%s: %d released, runs %+v; want serial 4 held and then released", late.Name(), st.Released, st.Runs)
	}
}

// sharedHolding returns what the holder's follower shares, through Redis,
// of the serial its store holds back.
func (e *env) sharedHolding(nd *node) follow.Holding {
	e.t.Helper()
	vals, err := nd.rs.Statuses(context.Background(), []string{e.url})
	if err != nil {
		e.t.Fatal(err)
	}
	var s shared
	if b, ok := vals[e.url]; ok {
		if err := json.Unmarshal(b, &s); err != nil {
			e.t.Fatal(err)
		}
	}
	return s.Follow.Holding
}

// TestFleetObserve: two nodes validating in observe mode. Serials that
// break the rule are published all the same; the holder validates what
// its follower publishes and the other node what it installs, and both
// report the generator's VRPs after every serial.
func TestFleetObserve(t *testing.T) {
	e := newEnv(t)
	e.watch()
	valid := e.validating(false)
	e.start("node-a")
	e.start("node-b")
	e.waitSerial(e.repo.Info().Serial)
	holder := e.oneHolder()
	e.waitVRPs(valid, "serial 1")
	e.waitSerial(e.advanceRemoving())
	e.waitVRPs(valid, "serial 2")
	e.waitSerial(e.advance(2))
	e.waitVRPs(valid, "serial 4")
	for _, nd := range e.alive() {
		st := valid(nd.Name()).Status()
		if st.Mode != "observe" || len(st.Holds) != 0 || len(st.Runs) == 0 || st.Runs[len(st.Runs)-1].Outcome != "observed" {
			t.Errorf("%s (holder %v): mode %s, holds %+v, runs %+v; want observed runs and no hold", nd.Name(), nd == holder, st.Mode, st.Holds, st.Runs)
		}
	}
}
