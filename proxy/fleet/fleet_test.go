package fleet

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// TestOneFetch: three nodes and one origin; the origin serves each file
// once, to the lease holder, and the others take the states from Redis.
// Then the holder dies without releasing its lease: another node takes
// over within a bounded time and continues from the head it serves,
// without the snapshot.
func TestOneFetch(t *testing.T) {
	e := newEnv(t)
	e.watch()
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		e.start(name)
	}
	first := e.repo.Info().Serial
	e.waitSerial(first)
	holder := e.oneHolder()
	second := e.advance(2)
	e.waitSerial(second)

	kinds, paths := e.fetches()
	t.Logf("origin requests after serials %d and %d: %v; per file %v", first, second, kinds, paths)
	for p, n := range paths {
		if n != 1 {
			t.Errorf("origin served %s %d times, want once", p, n)
		}
	}
	if kinds["snapshot"] != 1 || kinds["delta"] != 2 {
		t.Errorf("origin served %d snapshots and %d deltas, want 1 and 2", kinds["snapshot"], kinds["delta"])
	}
	syncs := e.syncs()
	t.Logf("notification fetches per node: %v", syncs)
	var total uint64
	for name, n := range syncs {
		total += n
		if name != holder.Name() && n != 0 {
			t.Errorf("%s, not the holder, fetched the notification %d times, want 0", name, n)
		}
	}
	if total != uint64(kinds["notification"]) {
		t.Errorf("notification fetches: nodes count %d, the origin %d", total, kinds["notification"])
	}
	for _, nd := range e.alive() {
		if nd != holder {
			if st := nd.repoStats(); st.Role != Watcher || st.Installed == 0 {
				t.Errorf("%s: got %+v, want a watcher that installed heads", nd.Name(), st)
			}
		}
	}

	// The holder dies.
	before, _ := e.fetches()
	start := time.Now()
	holder.kill()
	var next *node
	e.waitFor("another node takes the lease", func() bool {
		holders, _ := e.roles()
		if len(holders) == 1 {
			next = holders[0]
		}
		return next != nil
	})
	handOver := time.Since(start)
	t.Logf("hand-over from %s to %s: %v (lease ttl %v, renew %v)", holder.Name(), next.Name(), handOver.Round(time.Millisecond), testTTL, testRenew)
	if st := next.repoStats(); st.Token <= holder.repoStats().Token {
		t.Errorf("new holder's token %d, want above the dead one's %d", st.Token, holder.repoStats().Token)
	}
	third := e.advance(1)
	e.waitSerial(third)
	after, paths := e.fetches()
	t.Logf("origin requests after the hand-over and serial %d: %v", third, after)
	if got := after["snapshot"] - before["snapshot"]; got != 0 {
		t.Errorf("the new holder fetched %d snapshots, want 0 (it continues from its head)", got)
	}
	if got := after["delta"] - before["delta"]; got != 1 {
		t.Errorf("the new holder fetched %d deltas, want 1", got)
	}
	for p, n := range paths {
		if n != 1 {
			t.Errorf("origin served %s %d times, want once", p, n)
		}
	}
}

// TestLateJoiner: a node that joins a running fleet with an empty state
// directory serves Redis's head at once (loaded into memory alone), and
// then installs the next serials, whose blobs its disk lacked in part.
func TestLateJoiner(t *testing.T) {
	e := newEnv(t)
	e.watch()
	e.start("node-a")
	e.waitSerial(e.repo.Info().Serial)
	e.waitSerial(e.advance(1))
	late := e.start("node-b")
	e.waitSerial(e.repo.Info().Serial)
	e.waitSerial(e.advance(1))
	e.waitSerial(e.advance(1))
	if st := late.repoStats(); st.Role != Watcher || st.Installed < 2 {
		t.Errorf("%s: got %+v, want a watcher that installed both serials", late.Name(), st)
	}
}

// TestCompositeFleet runs a fleet whose snapshots are all composite
// (FragmentMin 1): watchers install the holder's heads from Redis with
// their part lists and parts, every node's head stays readable (watch),
// and the next holder continues from its stored composite head by deltas.
func TestCompositeFleet(t *testing.T) {
	e := newEnv(t)
	e.fragmentMin = 1
	e.watch()
	for _, name := range []string{"node-a", "node-b"} {
		e.start(name)
	}
	e.waitSerial(e.repo.Info().Serial)
	holder := e.oneHolder()
	e.waitSerial(e.advance(2))
	e.check()
	for _, nd := range e.alive() {
		h := nd.Cache().Head(e.url)
		composite := 0
		for _, f := range h.Files {
			if f.Composite() {
				composite++
			}
		}
		if composite == 0 {
			t.Errorf("%s: no composite file in its head of serial %d", nd.Name(), h.Serial)
		}
	}
	before, _ := e.fetches()
	holder.kill()
	e.waitSerial(e.advance(1))
	e.check()
	after, _ := e.fetches()
	if got := after["snapshot"] - before["snapshot"]; got != 0 {
		t.Errorf("the new holder fetched %d snapshots, want 0 (it continues from its composite head)", got)
	}
}

// TestRedisOutage: with Redis down every node keeps serving its head and
// polls the origin itself; when Redis returns, one node polls again.
func TestRedisOutage(t *testing.T) {
	e := newEnv(t)
	e.watch()
	for _, name := range []string{"node-a", "node-b", "node-c"} {
		e.start(name)
	}
	first := e.repo.Info().Serial
	e.waitSerial(first)
	e.oneHolder()

	e.srv.Stop()
	e.waitFor("every node polls alone", func() bool {
		_, solo := e.roles()
		return solo == len(e.alive())
	})
	e.waitSerial(first) // still served from memory
	base := e.syncs()
	e.waitFor("every node polls the origin", func() bool {
		for name, n := range e.syncs() {
			if n <= base[name] {
				return false
			}
		}
		return true
	})
	second := e.advance(1)
	e.waitSerial(second)
	kinds, _ := e.fetches()
	t.Logf("origin requests during the outage: %v; notification fetches per node: %v", kinds, e.syncs())
	// Each node fetched the new delta itself, and no snapshot: its
	// follower continued from the head it served.
	if kinds["snapshot"] != 1 || kinds["delta"] != len(e.list()) {
		t.Errorf("origin served %d snapshots and %d deltas, want 1 and %d", kinds["snapshot"], kinds["delta"], len(e.list()))
	}

	e.srv.Restart() // empty: no persistence
	holder := e.oneHolder()
	rc := e.srv.Client()
	e.waitFor("the holder writes its head to the restarted redis", func() bool {
		return rc.Exists(context.Background(), "rrdp-proxy:head:"+e.url).Val() == 1
	})
	base = e.syncs()
	before, _ := e.fetches()
	third := e.advance(1)
	e.waitSerial(third)
	after, _ := e.fetches()
	got := e.syncs()
	t.Logf("after redis returned: holder %s; notification fetches per node %v -> %v; origin %v -> %v", holder.Name(), base, got, before, after)
	for name, n := range got {
		if name != holder.Name() && n != base[name] {
			t.Errorf("%s, not the holder, fetched the notification %d times since redis returned, want 0", name, n-base[name])
		}
	}
	if d := after["delta"] - before["delta"]; d != 1 {
		t.Errorf("origin served the new delta %d times, want once", d)
	}
	if holders, solo := e.roles(); len(holders) != 1 || solo != 0 {
		t.Errorf("got %d holders and %d solo nodes, want 1 and 0", len(holders), solo)
	}
}

// TestDamagedBlob: a byte changed inside Redis is detected by the node
// that reads it, which installs nothing; the holder puts the blob again
// from its memory, and the node then installs the head.
func TestDamagedBlob(t *testing.T) {
	e := newEnv(t)
	e.watch()
	e.start("node-a")
	e.start("node-b")
	first := e.repo.Info().Serial
	e.waitSerial(first)
	holder := e.oneHolder()
	h := holder.Cache().Head(e.url)
	var big follow.File
	for _, f := range h.Files {
		if f.Size > big.Size {
			big = f
		}
	}
	ctx := context.Background()
	want, err := holder.Cache().Blob(ctx, big.Sum)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the first chunk of the largest blob; the nodes running
	// have it in memory and do not read it again.
	rc := e.srv.Client()
	keys := rc.Keys(ctx, "rrdp-proxy:blob:*").Val()
	var chunk string
	for _, k := range keys {
		if bytes.HasSuffix([]byte(k), []byte(":0")) && bytes.Contains([]byte(k), []byte(hexSum(big.Sum))) {
			chunk = k
		}
	}
	if chunk == "" {
		t.Fatalf("no chunk 0 of %s among %d keys", big.Path, len(keys))
	}
	if err := rc.SetRange(ctx, chunk, 10, "\xff\x00damage").Err(); err != nil {
		t.Fatal(err)
	}
	before, _ := e.fetches()
	late := e.start("node-c") // reads every blob from Redis
	e.waitFor("node-c detects the damaged blob", func() bool { return late.Stats().SumErrors > 0 })
	if got := late.Cache().Head(e.url); got != nil {
		t.Logf("node-c serial %d before the repair", got.Serial)
	}
	e.waitSerial(first)
	got, err := late.Cache().Blob(ctx, big.Sum)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("node-c's copy of %s: got %d bytes, %v; want the holder's %d", big.Path, len(got), err, len(want))
	}
	after, _ := e.fetches()
	st := late.Stats()
	hs := e.list()[0].Stats().Repaired + e.list()[1].Stats().Repaired
	t.Logf("node-c: sum errors %d, install errors %d, installed %d; blobs repaired by the holder %d; origin %v -> %v",
		st.SumErrors, st.Repos[0].InstallErrors, st.Repos[0].Installed, hs, before, after)
	if hs == 0 {
		t.Error("the holder repaired no blob, want the damaged one put again")
	}
	if after["snapshot"] != before["snapshot"] || after["delta"] != before["delta"] {
		t.Errorf("origin fetches went from %v to %v, want the repair from the holder's memory", before, after)
	}
}

func hexSum(s [32]byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	for i, c := range s {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(b)
}

func TestNewer(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	h := func(session string, serial uint64, at time.Duration) *follow.Head {
		return &follow.Head{Session: session, Serial: serial, Time: t0.Add(at)}
	}
	tests := []struct {
		name string
		a, b *follow.Head
		want bool
	}{
		{"nil a", nil, h("s", 1, 0), false},
		{"nil b", h("s", 1, 0), nil, true},
		{"higher serial", h("s", 2, 0), h("s", 1, time.Hour), true},
		{"same serial", h("s", 2, time.Hour), h("s", 2, 0), false},
		{"lower serial", h("s", 1, time.Hour), h("s", 2, 0), false},
		{"new session, later", h("t", 1, time.Minute), h("s", 9, 0), true},
		{"new session, earlier", h("t", 1, 0), h("s", 9, time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newer(tt.a, tt.b); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	rs, err := redisstore.New(redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	repo := follow.Config{URL: "https://rrdp.example.net/notification.xml"}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no redis", Config{}, false},
		{"zero else", Config{Redis: rs}, true},
		{"repos", Config{Redis: rs, Repos: []follow.Config{repo}}, true},
		{"repo twice", Config{Redis: rs, Repos: []follow.Config{repo, repo}}, false},
		{"repo without url", Config{Redis: rs, Repos: []follow.Config{{}}}, false},
		{"renew not below ttl", Config{Redis: rs, LeaseTTL: time.Second, RenewInterval: time.Second}, false},
		{"negative ttl", Config{Redis: rs, LeaseTTL: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok %v", err, tt.ok)
			}
			if n != nil {
				if n.Name() == "" {
					t.Error("empty node name")
				}
				n.Close()
			}
		})
	}
}

// TestColdInstall: a node that installs from Redis a head bringing many
// new blobs (here every head: the threshold lowered) puts them in its
// state directory alone, one in memory at a time, and reads them back
// after the switch: the fleet serves the same files as ever, and the
// node's cache holds the whole new state in memory again.
func TestColdInstall(t *testing.T) {
	n := coldBlobs
	t.Cleanup(func() { coldBlobs = n }) // after the nodes stop
	coldBlobs = 1
	e := newEnv(t)
	e.fragmentMin = 1
	e.watch()
	for _, name := range []string{"node-a", "node-b"} {
		e.start(name)
	}
	e.waitSerial(e.repo.Info().Serial)
	holder := e.oneHolder()
	e.waitSerial(e.advance(2))
	e.check()
	for _, nd := range e.alive() {
		if nd == holder {
			continue
		}
		if st := nd.repoStats(); st.ColdInstalls == 0 || st.ColdInstalls != st.Installed {
			t.Errorf("%s: %d of %d heads installed cold, want all", nd.Name(), st.ColdInstalls, st.Installed)
		}
		if st := nd.Cache().Stats(); st.ColdBytes != 0 {
			t.Errorf("%s: %d bytes of its state not read back into memory", nd.Name(), st.ColdBytes)
		}
	}
}
