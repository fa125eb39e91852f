package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// testSession is the compact session of the heads the tests write.
const testSession = "7d0e6f4a-1b2c-4d3e-8f90-a1b2c3d4e5f6"

// compactBlob is a compact file of a test head and its bytes.
type compactBlob struct {
	file follow.File
	data []byte
}

// newCompactHead returns a compact head of key at serial in session, with
// one file of kind (its bytes made from tag, so that two heads of one
// serial differ), named as the compact layout names it.
func newCompactHead(key, session string, serial uint64, kind rrdpxml.Kind, tag string) (*follow.Head, compactBlob) {
	data := []byte(fmt.Sprintf("compact %s serial %d %s", session, serial, tag))
	sum := sha256.Sum256(data)
	name := "snapshot.bin"
	if kind == rrdpxml.KindDelta {
		name = "delta.bin"
	}
	f := follow.File{Path: fmt.Sprintf("compact/%s/%d/%x/%s", session, serial, sum[:8], name),
		Sum: sum, Size: int64(len(data)), Format: irpki.FormatBin, Kind: kind, Serial: serial}
	h := &follow.Head{Repo: key, Session: session, Serial: serial, Origin: irpki.FormatBin, Time: time.Now().UTC(),
		NotificationBin: []byte(fmt.Sprintf("notification %d %s", serial, tag)), Files: []follow.File{f}}
	return h, compactBlob{file: f, data: data}
}

// fakeHolder holds a repository's lease from the test itself, with its own
// Redis client, and writes compact heads as a holder's tier does: blobs
// first, then the head fenced by the lease. No node of the fleet can take
// the lease while it holds it.
type fakeHolder struct {
	t     *testing.T
	rs    *redisstore.Store
	lease redisstore.Lease
}

func (e *env) fakeHolder() *fakeHolder {
	e.t.Helper()
	rs, err := redisstore.New(redisstore.Config{URL: e.srv.URL(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rs.Close() })
	l, ok, err := rs.Acquire(context.Background(), e.url, "test-holder", time.Hour)
	if err != nil || !ok {
		e.t.Fatalf("the test takes the lease: %v, %v", ok, err)
	}
	return &fakeHolder{t: e.t, rs: rs, lease: l}
}

// publish writes h and its blobs to Redis.
func (f *fakeHolder) publish(h *follow.Head, blobs ...compactBlob) {
	f.t.Helper()
	ctx := context.Background()
	for _, b := range blobs {
		if err := f.rs.PutBlob(ctx, b.file.Sum, b.data); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.rs.PutCompanionFenced(ctx, f.lease, cache.CompactKey(f.lease.Repo), h); err != nil {
		f.t.Fatalf("publish compact serial %d: %v", h.Serial, err)
	}
}

// unrun returns a node of the fleet whose Run has not started: a watcher
// that has installed nothing, and does nothing but what the test calls.
// Its renew interval is long (the time a watcher may wait for a file of
// a repository's head is two of them, up to watchWait).
func (e *env) unrun(name string) *Node {
	e.t.Helper()
	rs, err := redisstore.New(redisstore.Config{URL: e.srv.URL(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := New(Config{Node: name, Redis: rs, Repos: []follow.Config{{URL: e.url, Client: e.client}},
		Compact: []string{e.url}, Logger: logger(), LeaseTTL: 30 * time.Second, RenewInterval: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { n.Close(); rs.Close() })
	return n
}

// gets returns the GET commands Redis has answered so far.
func (e *env) gets() int {
	e.t.Helper()
	info, err := e.srv.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_get:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestCatchupCompact: Catchup for a repository's compact publication
// (Config.Compact) on a watcher. A file of a serial the node has not
// installed is found in Redis's compact head, and its blob read through
// the node's cache from Redis. A made-up name of a later serial or
// another session answers nil at once, at the cost of two reads of
// Redis's head at most (a compact head is in Redis before any node serves
// it, so there is nothing to wait for), and a name outside the compact
// layout, or of a serial the node has, reads nothing. Nothing is ever
// asked of the origin.
func TestCatchupCompact(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder := e.fakeHolder()
	key := cache.CompactKey(e.url)
	w := e.unrun("node-w")
	r := w.runners[e.url]

	h1, b1 := newCompactHead(key, testSession, 1, rrdpxml.KindSnapshot, "a")
	holder.publish(h1, b1)
	got, err := w.Catchup(ctx, key, b1.file.Path)
	if err != nil || got == nil || !names(got, b1.file.Path) || !cache.SameCompact(got, h1) {
		t.Fatalf("a file of compact serial 1, not installed: got %s, %v; want Redis's head of serial 1", desc(got), err)
	}
	data, err := w.Cache().Blob(ctx, b1.file.Sum)
	if err != nil || !bytes.Equal(data, b1.data) {
		t.Fatalf("its blob through the watcher's cache: got %q, %v; want %q", data, err, b1.data)
	}
	if st := w.Stats().Repos[0]; st.CatchupShared != 1 {
		t.Errorf("CatchupShared %d after one file found in redis, want 1", st.CatchupShared)
	}
	select {
	case <-r.poke:
	default:
		t.Error("the runner was not told to install the head Catchup found")
	}

	madeUp := []struct{ name, path string }{
		{"later serial", fmt.Sprintf("compact/%s/%d/0123456789abcdef/snapshot.bin", testSession, 1000)},
		{"another session", "compact/00000000-0000-4000-8000-000000000000/1/0123456789abcdef/delta.bin"},
		{"highest serial", fmt.Sprintf("compact/%s/18446744073709551615/00/snapshot.bin", testSession)},
	}
	for _, c := range madeUp {
		t.Run(c.name, func(t *testing.T) {
			before := e.gets()
			got, err := w.Catchup(ctx, key, c.path)
			if got != nil || err != nil {
				t.Errorf("%s: got %s, %v; want nil, nil", c.path, desc(got), err)
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: Catchup waited out its 30s context", c.path)
			}
			if n := e.gets() - before; n > 2 {
				t.Errorf("%s: %d reads of redis, want 2 at most", c.path, n)
			}
		})
	}
	outside := []string{
		"compact/notification.bin",
		"compact/" + testSession + "/1/00/snapshot.bin/more",
		"compact/" + testSession + "/one/00/snapshot.bin",
		"compact/" + testSession + "/18446744073709551616/00/snapshot.bin",
		"compact/" + testSession + "//00/snapshot.bin",
		"compact//1/00/snapshot.bin",
		testSession + "/1/00/snapshot.bin",
		"compact/../../" + testSession + "/1/00",
	}
	before := e.gets()
	for _, p := range outside {
		if got, err := w.Catchup(ctx, key, p); got != nil || err != nil {
			t.Errorf("%s, outside the compact layout: got %s, %v; want nil, nil", p, desc(got), err)
		}
	}
	if n := e.gets() - before; n != 0 {
		t.Errorf("names outside the layout read redis %d times, want 0", n)
	}

	// Installed, serial 1 is the node's own: a name of it is answered
	// with the node's head (installed since the server looked: see
	// Catchup), one of an earlier serial with nil, neither from Redis; a
	// file of serial 2, once published, is looked for.
	if err := r.installCompact(ctx); err != nil {
		t.Fatal(err)
	}
	if !cache.SameCompact(w.Cache().Head(key), h1) {
		t.Fatalf("after installCompact: the watcher serves %s, want serial 1", desc(w.Cache().Head(key)))
	}
	before = e.gets()
	if got, err := w.Catchup(ctx, key, b1.file.Path); err != nil || !cache.SameCompact(got, h1) {
		t.Errorf("%s, of the installed serial: got %s, %v; want the node's head of serial 1", b1.file.Path, desc(got), err)
	}
	earlier := fmt.Sprintf("compact/%s/0/0123456789abcdef/snapshot.bin", testSession)
	if got, err := w.Catchup(ctx, key, earlier); got != nil || err != nil {
		t.Errorf("%s, earlier than the installed serial: got %s, %v; want nil, nil", earlier, desc(got), err)
	}
	if n := e.gets() - before; n != 0 {
		t.Errorf("names of the installed serial read redis %d times, want 0", n)
	}
	h2, b2 := newCompactHead(key, testSession, 2, rrdpxml.KindDelta, "a")
	holder.publish(h2, b2)
	if got, err := w.Catchup(ctx, key, b2.file.Path); err != nil || !cache.SameCompact(got, h2) {
		t.Errorf("the delta of serial 2: got %s, %v; want Redis's head of serial 2", desc(got), err)
	}

	// The compact key of a repository the fleet does not share, and a
	// repository's key with a compact name, are not looked for in
	// Redis's compact head.
	for _, k := range []string{cache.CompactKey("https://other.example/notification.xml"), e.url} {
		if got, err := w.Catchup(ctx, k, b2.file.Path); got != nil || err != nil {
			t.Errorf("key %q: got %s, %v; want nil, nil", k, desc(got), err)
		}
	}
	reqs, err := e.origin.Requests()
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 0 {
		t.Errorf("the origin got %d requests, want none (compact files are never fetched)", len(reqs))
	}
}

// TestCompactTakeover: a node taking a lease over publishes compact
// serials only once its compact head is Redis's, and never writes a
// compact head that does not continue Redis's. While it cannot install
// Redis's head (here a blob Redis lost) it does not publish and Took is
// not told; once the blob is back it installs the head and publishes the
// next serial; a serial made from an older head (a validator run begun
// before the lease went and came back) is refused and kept nowhere, not
// in the state directory either. Redis back empty gets the holder's
// compact head again.
func TestCompactTakeover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := cache.CompactKey(e.url)
	var disk cache.Tier
	took := make(chan struct{}, 16)
	e.prepare = func(name string, cfg *Config) func(*Node) func(context.Context) {
		cfg.Compact = []string{e.url}
		cfg.Took = func(string) {
			select {
			case took <- struct{}{}:
			default:
			}
		}
		disk = cfg.Cache.Tiers[0]
		return nil
	}
	holder := e.fakeHolder()
	h1, b1 := newCompactHead(key, testSession, 1, rrdpxml.KindSnapshot, "a")
	holder.publish(h1, b1)
	b := e.start("node-b")
	e.waitFor("node-b installs compact serial 1", func() bool { return cache.SameCompact(b.Cache().Head(key), h1) })

	// Serial 2 names a blob whose copy in Redis is damaged: node-b's
	// install finds it out, removes it, and keeps serial 1.
	h2, b2 := newCompactHead(key, testSession, 2, rrdpxml.KindSnapshot, "a")
	if err := holder.rs.PutBlob(ctx, b2.file.Sum, b2.data); err != nil {
		t.Fatal(err)
	}
	rc := e.srv.Client()
	chunks := rc.Keys(ctx, "rrdp-proxy:blob:*"+hexSum(b2.file.Sum)+"*").Val()
	if len(chunks) == 0 {
		t.Fatal("no key of the blob of serial 2 in redis")
	}
	for _, k := range chunks {
		if bytes.HasSuffix([]byte(k), []byte(":0")) {
			if err := rc.SetRange(ctx, k, 3, "damage").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	holder.publish(h2)
	e.waitFor("node-b finds the damaged blob", func() bool { return b.Stats().SumErrors > 0 })
	if !cache.SameCompact(b.Cache().Head(key), h1) {
		t.Fatalf("node-b serves %s, want compact serial 1 kept", desc(b.Cache().Head(key)))
	}

	// The lease goes to node-b, which cannot install serial 2.
	if err := holder.rs.Release(ctx, holder.lease); err != nil {
		t.Fatal(err)
	}
	e.waitFor("node-b holds the lease", func() bool { return b.repoStats().Role == Holder })
	e.waitSerial(e.repo.Info().Serial) // its follower ran: take has returned
	if b.Publishes(e.url) {
		t.Fatal("node-b publishes compact serials while it serves serial 1 and Redis holds serial 2")
	}
	select {
	case <-took:
		t.Error("Took told before node-b may publish")
	default:
	}
	// A serial made from serial 1 would fork serial 2: refused, in
	// Redis and on disk.
	fork, bf := newCompactHead(key, testSession, 2, rrdpxml.KindSnapshot, "fork")
	if err := b.Cache().PutBlob(ctx, bf.file.Sum, bf.data); err != nil {
		t.Fatal(err)
	}
	if err := b.Cache().PutHead(ctx, key, fork); !errors.Is(err, errNotNext) {
		t.Errorf("a second serial 2: got %v, want errNotNext", err)
	}
	if got, err := holder.rs.Head(ctx, key); err != nil || !cache.SameCompact(got, h2) {
		t.Errorf("redis after the refused serial: got %s, %v; want serial 2", desc(got), err)
	}
	if heads, err := disk.Heads(ctx); err != nil || heads[key] != nil && cache.SameCompact(heads[key], fork) {
		t.Errorf("the state directory after the refused serial: %s, %v; want serial 1", desc(heads[key]), err)
	}

	// The blob is back: node-b installs serial 2, then publishes.
	if err := holder.rs.PutBlob(ctx, b2.file.Sum, b2.data); err != nil {
		t.Fatal(err)
	}
	e.waitFor("node-b publishes", func() bool { return b.Publishes(e.url) })
	if !cache.SameCompact(b.Cache().Head(key), h2) {
		t.Fatalf("node-b publishes from %s, want serial 2 installed first", desc(b.Cache().Head(key)))
	}
	select {
	case <-took:
	case <-time.After(deadline):
		t.Fatal("Took not told once node-b may publish")
	}
	h3, b3 := newCompactHead(key, testSession, 3, rrdpxml.KindSnapshot, "b")
	if err := b.Cache().PutBlob(ctx, b3.file.Sum, b3.data); err != nil {
		t.Fatal(err)
	}
	if err := b.Cache().PutHead(ctx, key, h3); err != nil {
		t.Fatalf("serial 3 from the holder: %v", err)
	}
	if got, err := holder.rs.Head(ctx, key); err != nil || !cache.SameCompact(got, h3) {
		t.Fatalf("redis after serial 3: got %s, %v; want serial 3", desc(got), err)
	}
	// A run begun before serial 3 offers its own serial 3 late.
	late, bl := newCompactHead(key, testSession, 3, rrdpxml.KindSnapshot, "late")
	if err := b.Cache().PutBlob(ctx, bl.file.Sum, bl.data); err != nil {
		t.Fatal(err)
	}
	if err := b.Cache().PutHead(ctx, key, late); !errors.Is(err, errNotNext) {
		t.Errorf("a late serial 3: got %v, want errNotNext", err)
	}
	if !cache.SameCompact(b.Cache().Head(key), h3) {
		t.Errorf("node-b serves %s after the late serial, want serial 3", desc(b.Cache().Head(key)))
	}

	// Redis comes back empty: the holder writes its compact head back,
	// the same serial, no new one.
	e.srv.Restart()
	e.waitFor("the holder writes compact serial 3 back", func() bool {
		got, err := holder.rs.Head(ctx, key)
		return err == nil && cache.SameCompact(got, h3)
	})
}
