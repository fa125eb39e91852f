package follow

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// env is one origin serving one testRepo.
type env struct {
	t      *testing.T
	repo   *testRepo
	origin *rp.Origin
	client *upstream.Client
	store  *MemStore
	log    *syncBuffer
	now    time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &env{t: t, repo: newTestRepo(t, dir, o.URL(), 1), origin: o, client: c, store: NewMemStore(),
		log: &syncBuffer{}, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (e *env) follower(file string) *Follower {
	e.t.Helper()
	f, err := New(Config{
		URL: e.repo.base + file, Client: e.client, Store: e.store,
		Now:    func() time.Time { return e.now },
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func (e *env) sync(f *Follower) bool {
	e.t.Helper()
	changed, err := f.Sync(context.Background())
	if err != nil {
		e.t.Fatalf("sync: %v", err)
	}
	return changed
}

// snapshotFetches counts the snapshot requests since the last reset.
func (e *env) snapshotFetches() int {
	e.t.Helper()
	counts, err := e.origin.Counts()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for k, v := range counts {
		if strings.Contains(k, "/snapshot.") {
			n += v
		}
	}
	return n
}

func (e *env) reset() {
	if err := e.origin.Reset(); err != nil {
		e.t.Fatal(err)
	}
}

// checkState compares the follower's objects with the origin's, and
// checks the head it published.
func checkState(t *testing.T, f *Follower, r *testRepo) {
	t.Helper()
	got := map[string][]byte{}
	f.WalkObjects(func(u string, c []byte) error { got[u] = bytes.Clone(c); return nil })
	if len(got) != len(r.objs) {
		t.Errorf("got %d objects, want %d", len(got), len(r.objs))
	}
	for u, c := range r.objs {
		if !bytes.Equal(got[u], c) {
			t.Errorf("object %s differs or is missing", u)
			break
		}
	}
	if s := f.Stats(); s.Session != r.session || s.Serial != r.serial {
		t.Errorf("got session %s serial %d, want %s %d", s.Session, s.Serial, r.session, r.serial)
	}
	h := f.Head()
	if h == nil || h.Serial != r.serial {
		t.Fatalf("head %+v, want serial %d", h, r.serial)
	}
	checkHead(t, f.cfg.Store.(*MemStore), h, f.cfg.Base)
}

// checkHead checks that the notifications of h name files the store
// holds, and that their snapshots hold the state.
func checkHead(t *testing.T, st *MemStore, h *Head, base string) {
	t.Helper()
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
	if err != nil {
		t.Fatalf("served notification.xml: %v", err)
	}
	nb, err := irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{})
	if err != nil {
		t.Fatalf("served notification.bin: %v", err)
	}
	byPath, gz := map[string]File{}, map[string]File{}
	for _, f := range h.Files {
		if f.Gzip {
			gz[f.Path] = f
		} else {
			byPath[f.Path] = f
		}
	}
	// Every file has its gzip copy, which decompresses to the file.
	for p, fl := range byPath {
		g, ok := gz[p]
		if !ok {
			t.Fatalf("%s: no gzip copy", p)
		}
		plain := readFile(t, st, fl)
		zb := readFile(t, st, g)
		if g.Size != int64(len(zb)) {
			t.Fatalf("%s: gzip copy of the wrong size", p)
		}
		if got := gunzip(t, zb); !bytes.Equal(got, plain) {
			t.Fatalf("%s: gzip copy does not give the file", p)
		}
	}
	for _, ref := range []rrdpxml.SnapshotRef{n.Snapshot, nb.Snapshot} {
		fl, ok := byPath[strings.TrimPrefix(ref.URI, base)]
		if !ok || fl.Sum != ref.Hash || !fl.Expires.IsZero() {
			t.Fatalf("snapshot %s: file %+v, want one with the notification's hash", ref.URI, fl)
		}
		readFile(t, st, fl)
	}
	if fl, ok := byPath[strings.TrimPrefix(n.Snapshot.URI, base)]; ok {
		b := readFile(t, st, fl)
		d := rrdpxml.NewDecoder(bytes.NewReader(b), rrdpxml.Limits{})
		hd, err := d.Header()
		d.Close()
		if err != nil || hd.SessionID != n.SessionID || hd.Serial != n.Serial {
			t.Fatalf("snapshot.xml: header %+v (%v), want session %s serial %d", hd, err, n.SessionID, n.Serial)
		}
	}
	for _, d := range append(n.Deltas, nb.Deltas...) {
		if fl, ok := byPath[strings.TrimPrefix(d.URI, base)]; !ok || fl.Sum != d.Hash {
			t.Fatalf("delta %s: not among the head's files", d.URI)
		}
	}
	if xs, bs := h.Sessions(); n.SessionID != xs || nb.SessionID != bs {
		t.Errorf("notifications under sessions %s and %s, want %s and %s", n.SessionID, nb.SessionID, xs, bs)
	}
	if h.Origin == irpki.FormatBin && n.SessionID != irpki.DerivedSession(nb.SessionID) {
		t.Errorf("XML from a .bin origin under session %s, want the derived %s", n.SessionID, irpki.DerivedSession(nb.SessionID))
	}
}

func TestSnapshotThenDeltas(t *testing.T) {
	for _, file := range []string{"notification.xml", "notification.bin"} {
		t.Run(file, func(t *testing.T) {
			e := newEnv(t)
			f := e.follower(file)
			if !e.sync(f) {
				t.Fatal("first sync: got no change")
			}
			checkState(t, f, e.repo)
			first := f.Head()
			if s := f.Stats(); s.Snapshots != 1 {
				t.Fatalf("got %d snapshots, want 1", s.Snapshots)
			}
			if e.sync(f) {
				t.Fatal("sync of an unchanged origin: got a change")
			}

			for range 3 {
				e.repo.advance()
			}
			e.reset()
			e.now = e.now.Add(time.Minute)
			if !e.sync(f) {
				t.Fatal("sync after 3 serials: got no change")
			}
			checkState(t, f, e.repo)
			if s := f.Stats(); s.Snapshots != 1 || s.Deltas != 3 || s.DeltaFailures != 0 {
				t.Fatalf("got %d snapshots, %d deltas, %d failures; want 1, 3, 0", s.Snapshots, s.Deltas, s.DeltaFailures)
			}
			if n := e.snapshotFetches(); n != 0 {
				t.Fatalf("the origin served %d snapshots, want 0", n)
			}
			h := f.Head()
			n, _, _ := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
			if len(n.Deltas) != 3 {
				t.Errorf("served notification lists %d deltas, want 3", len(n.Deltas))
			}
			// The first snapshot left the notification: retained 2 hours.
			for _, old := range first.Files[:2] {
				found := false
				for _, fl := range h.Files {
					if fl.Path == old.Path {
						found = true
						if want := e.now.Add(2 * time.Hour); !fl.Expires.Equal(want) {
							t.Errorf("%s expires %v, want %v", fl.Path, fl.Expires, want)
						}
					}
				}
				if !found {
					t.Errorf("%s left the head at once, want it retained", old.Path)
				}
			}
			// A delta step after the retention drops the old snapshot.
			e.repo.advance()
			e.now = e.now.Add(3 * time.Hour)
			e.sync(f)
			checkState(t, f, e.repo)
			for _, fl := range f.Head().Files {
				if fl.Path == first.Files[0].Path {
					t.Errorf("%s still in the head after its retention", fl.Path)
				}
			}
		})
	}
}

func TestFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *testRepo)
		want   Stats // the counters compared: Snapshots, DeltaFailures, Desyncs, Backwards
		log    string
	}{
		{"wrong delta hash", func(r *testRepo) {
			r.advance()
			x, b := r.notification(false), r.notification(true)
			x.Deltas[len(x.Deltas)-1].Hash[0] ^= 1
			b.Deltas[len(b.Deltas)-1].Hash[0] ^= 1
			r.writeNotifications(x, b)
		}, Stats{Snapshots: 2, DeltaFailures: 1}, "hash mismatch"},
		{"gap in the deltas", func(r *testRepo) {
			r.advance()
			r.advance()
			x, b := r.notification(false), r.notification(true)
			x.Deltas, b.Deltas = x.Deltas[1:], b.Deltas[1:]
			r.writeNotifications(x, b)
		}, Stats{Snapshots: 2, DeltaFailures: 1}, "deltas do not chain"},
		{"session reset", func(r *testRepo) { r.reset(99) }, Stats{Snapshots: 2}, ""},
		{"publish without hash overwrites", func(r *testRepo) {
			r.overwrite = true
			r.advance()
		}, Stats{Snapshots: 2, DeltaFailures: 1}, "publish without hash overwrites"},
		{"replace with a wrong hash", func(r *testRepo) {
			r.badReplace = true
			r.advance()
		}, Stats{Snapshots: 2, DeltaFailures: 1}, "replaced object hash mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.follower("notification.xml")
			e.sync(f)
			tc.change(e.repo)
			e.reset()
			if !e.sync(f) {
				t.Fatal("got no change")
			}
			checkState(t, f, e.repo)
			s := f.Stats()
			if s.Snapshots != tc.want.Snapshots || s.DeltaFailures != tc.want.DeltaFailures {
				t.Errorf("got %d snapshots, %d delta failures; want %d, %d", s.Snapshots, s.DeltaFailures, tc.want.Snapshots, tc.want.DeltaFailures)
			}
			if n := e.snapshotFetches(); n != 1 {
				t.Errorf("the origin served %d snapshots, want 1", n)
			}
			if tc.log != "" && !strings.Contains(e.log.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, e.log.String())
			}
		})
	}
}

func TestBackwardsAndDesync(t *testing.T) {
	t.Run("serial goes backwards", func(t *testing.T) {
		e := newEnv(t)
		f := e.follower("notification.xml")
		e.repo.advance()
		e.repo.advance()
		e.sync(f) // serial 3
		before := f.Head()
		e.repo.rollback(2)
		e.reset()
		if !e.sync(f) {
			t.Fatal("got no change")
		}
		checkState(t, f, e.repo)
		checkReset(t, f, before)
		if s := f.Stats(); s.Backwards != 1 || s.Snapshots != 2 {
			t.Errorf("got %d backwards, %d snapshots; want 1, 2", s.Backwards, s.Snapshots)
		}
		if n := e.snapshotFetches(); n != 1 {
			t.Errorf("the origin served %d snapshots, want 1", n)
		}
	})
	t.Run("known delta changes its hash", func(t *testing.T) {
		e := newEnv(t)
		f := e.follower("notification.xml")
		e.repo.advance()
		e.sync(f) // serial 2, delta 2 seen
		before := f.Head()
		e.repo.rollback(1)
		e.repo.advance() // another serial 2
		e.repo.advance() // and 3
		e.reset()
		if !e.sync(f) {
			t.Fatal("got no change")
		}
		checkState(t, f, e.repo)
		checkReset(t, f, before)
		if s := f.Stats(); s.Desyncs != 1 || s.Snapshots != 2 {
			t.Errorf("got %d desyncs, %d snapshots; want 1, 2", s.Desyncs, s.Snapshots)
		}
		if !strings.Contains(e.log.String(), "desynchronisation") {
			t.Errorf("log lacks the desynchronisation:\n%s", e.log.String())
		}
	})
}

// checkReset checks that f's head is under new served sessions, lists no
// deltas, and that the files of before are still served.
func checkReset(t *testing.T, f *Follower, before *Head) {
	t.Helper()
	h := f.Head()
	bx, bb := before.Sessions()
	hx, hb := h.Sessions()
	if hx == bx || hb == bb || h.Resets != before.Resets+1 || f.Stats().Resets != 1 {
		t.Errorf("sessions %s %s (resets %d, counted %d) after %s %s: want a downstream session reset", hx, hb, h.Resets, f.Stats().Resets, bx, bb)
	}
	n, _, _ := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
	if len(n.Deltas) != 0 {
		t.Errorf("a reset session lists %d deltas, want 0", len(n.Deltas))
	}
	paths := map[string]bool{}
	for _, fl := range h.Files {
		paths[fl.Path] = true
	}
	for _, fl := range before.Files {
		if !paths[fl.Path] {
			t.Errorf("%s of the old session is no longer served", fl.Path)
		}
	}
	// The files of the new session are regenerated under it.
	for _, fl := range h.Files {
		if fl.Expires.IsZero() && !strings.HasPrefix(fl.Path, hx+"/") && !strings.HasPrefix(fl.Path, hb+"/") {
			t.Errorf("%s is not under the new session", fl.Path)
		}
	}
}

func TestLastGoodStateKept(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *env)
		want   error
	}{
		{"origin down", func(e *env) { e.origin.Close() }, nil},
		{"bad delta and bad snapshot", func(e *env) {
			e.repo.overwrite = true
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Snapshot.Hash[0] ^= 1
			b.Snapshot.Hash[0] ^= 1
			e.repo.writeNotifications(x, b)
		}, ErrHash},
		{"snapshot on another origin", func(e *env) {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Snapshot.URI = "https://elsewhere.example/rrdp/snapshot.xml"
			b.Snapshot.URI = "https://elsewhere.example/rrdp/snapshot.bin"
			e.repo.writeNotifications(x, b)
		}, ErrCrossOrigin},
		{"delta on another origin", func(e *env) {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Deltas[0].URI = "https://elsewhere.example/rrdp/delta.xml"
			b.Deltas[0].URI = "https://elsewhere.example/rrdp/delta.bin"
			e.repo.writeNotifications(x, b)
		}, ErrCrossOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.follower("notification.xml")
			e.sync(f)
			before := f.Head()
			want := e.repo.history[1]
			tc.change(e)
			_, err := f.Sync(context.Background())
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if s := f.Stats(); s.Errors != 1 || s.Serial != 1 || s.LastErr == "" {
				t.Errorf("got %d errors at serial %d (%q), want 1 at serial 1", s.Errors, s.Serial, s.LastErr)
			}
			if f.Head() != before || e.store.Head(f.cfg.Repo) != before {
				t.Error("the head changed after a failed sync")
			}
			n := 0
			f.WalkObjects(func(u string, c []byte) error {
				if !bytes.Equal(want[u], c) {
					t.Errorf("object %s changed", u)
				}
				n++
				return nil
			})
			if n != len(want) {
				t.Errorf("got %d objects, want %d", n, len(want))
			}
		})
	}
}

func TestCrossOriginFirstSync(t *testing.T) {
	e := newEnv(t)
	x, b := e.repo.notification(false), e.repo.notification(true)
	x.Snapshot.URI = "https://elsewhere.example/snapshot.xml"
	b.Snapshot.URI = "https://elsewhere.example/snapshot.bin"
	e.repo.writeNotifications(x, b)
	f := e.follower("notification.xml")
	if _, err := f.Sync(context.Background()); !errors.Is(err, ErrCrossOrigin) {
		t.Fatalf("got %v, want ErrCrossOrigin", err)
	}
	if h := e.store.Head(f.cfg.Repo); h != nil {
		t.Fatalf("got a head %+v, want none", h)
	}
}

// TestXMLAndBinOrigins follows the same repository as XML and as .bin and
// expects the same objects, and the .bin files the core published.
func TestXMLAndBinOrigins(t *testing.T) {
	e := newEnv(t)
	fx, fb := e.follower("notification.xml"), e.follower("notification.bin")
	for i := range 3 {
		if i > 0 {
			e.repo.advance()
			e.repo.advance()
		}
		e.sync(fx)
		e.sync(fb)
		checkState(t, fx, e.repo)
		checkState(t, fb, e.repo)
	}
	hx, hb := fx.Head(), fb.Head()
	nx, _ := irpki.UnmarshalNotification(hx.NotificationBin, rrdpxml.Limits{})
	nb, _ := irpki.UnmarshalNotification(hb.NotificationBin, rrdpxml.Limits{})
	if nx.Snapshot.Hash != nb.Snapshot.Hash {
		t.Errorf("snapshot.bin from the XML origin %x, from the .bin origin %x: want the same", nx.Snapshot.Hash, nb.Snapshot.Hash)
	}
	if fb.Stats().Deltas != 4 {
		t.Errorf(".bin follower applied %d deltas, want 4", fb.Stats().Deltas)
	}
}

// recordStore signals every head it stores.
type recordStore struct {
	*MemStore
	heads chan *Head
}

func (r *recordStore) PutHead(ctx context.Context, repo string, h *Head) error {
	if err := r.MemStore.PutHead(ctx, repo, h); err != nil {
		return err
	}
	r.heads <- h
	return nil
}

func TestRun(t *testing.T) {
	e := newEnv(t)
	rs := &recordStore{MemStore: NewMemStore(), heads: make(chan *Head, 10)}
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: rs, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	if h := <-rs.heads; h.Serial != 1 {
		t.Fatalf("got serial %d, want 1", h.Serial)
	}
	e.repo.advance()
	if h := <-rs.heads; h.Serial != 2 {
		t.Fatalf("got serial %d, want 2", h.Serial)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}

func TestWait(t *testing.T) {
	f, err := New(Config{URL: "https://example.net/n.xml", Interval: time.Minute, MaxBackoff: 10 * time.Minute, Jitter: 0.1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		failures int
		base     time.Duration
	}{{0, time.Minute}, {1, 2 * time.Minute}, {3, 8 * time.Minute}, {4, 10 * time.Minute}, {40, 10 * time.Minute}} {
		for range 20 {
			got := f.wait(tc.failures)
			if lo, hi := tc.base*9/10, tc.base*11/10; got < lo || got > hi {
				t.Errorf("after %d failures: got %v, want within [%v, %v]", tc.failures, got, lo, hi)
			}
		}
	}
}

// TestPause: a poll that succeeded is followed by the rest of the
// interval, so that polls keep their rate; one that overran it by a
// quarter of it; one that failed by the whole back-off.
func TestPause(t *testing.T) {
	f, err := New(Config{URL: "https://example.net/n.xml", Interval: time.Minute, MaxBackoff: 10 * time.Minute, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Jitter = 0 // New takes 0 for its default
	for _, tc := range []struct {
		name      string
		failures  int
		took, got time.Duration
	}{
		{"quick", 0, 200 * time.Millisecond, time.Minute - 200*time.Millisecond},
		{"most of the interval", 0, 50 * time.Second, 10 * time.Second},
		{"took the interval", 0, time.Minute, 15 * time.Second},
		{"overran", 0, 3 * time.Minute, 15 * time.Second},
		{"failed", 1, 20 * time.Second, 2 * time.Minute},
		{"failed, overran", 2, 5 * time.Minute, 4 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.pause(tc.failures, tc.took); got != tc.got {
				t.Errorf("pause(%d, %v): got %v, want %v", tc.failures, tc.took, got, tc.got)
			}
		})
	}
}

// TestCanonicalSnapshot: in the regenerating (mirror, edge) mode the
// snapshot of a serial depends only on the session and the objects: a
// node that followed from serial 1 by deltas and one that started at the
// last serial from the origin's snapshot name the same snapshot and delta
// files, byte for byte, in both formats (issue 14, the same bytes on every
// node).
func TestCanonicalSnapshot(t *testing.T) {
	e := newEnv(t)
	f := e.follower("notification.xml")
	e.sync(f)
	for range 19 {
		e.repo.advance()
		e.now = e.now.Add(time.Minute)
		e.sync(f)
	}
	late, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: NewMemStore(),
		Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(late)
	if s := f.Stats(); s.Snapshots != 1 || s.Deltas != 19 {
		t.Fatalf("the first node: %d snapshots, %d deltas; want 1 and 19", s.Snapshots, s.Deltas)
	}
	if s := late.Stats(); s.Snapshots != 1 || s.Deltas != 0 {
		t.Fatalf("the late node: %d snapshots, %d deltas; want 1 and 0", s.Snapshots, s.Deltas)
	}
	for _, format := range []irpki.Format{irpki.FormatXML, irpki.FormatBin} {
		parse := func(h *Head) *rrdpxml.Notification {
			var n *rrdpxml.Notification
			var err error
			if format == irpki.FormatXML {
				n, _, err = rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
			} else {
				n, err = irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{})
			}
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		a, b := parse(f.Head()), parse(late.Head())
		if a.Serial != 20 || a.Snapshot != b.Snapshot {
			t.Errorf("%v: snapshot of serial %d: %s %x by deltas, %s %x from the snapshot; want the same", format, a.Serial,
				a.Snapshot.URI, a.Snapshot.Hash[:8], b.Snapshot.URI, b.Snapshot.Hash[:8])
		}
		deltas := map[uint64]rrdpxml.DeltaRef{}
		for _, d := range a.Deltas {
			deltas[d.Serial] = d
		}
		if len(b.Deltas) == 0 {
			t.Errorf("%v: the late node lists no delta", format)
		}
		for _, d := range b.Deltas {
			if deltas[d.Serial] != d {
				t.Errorf("%v: delta %d: %s by deltas, %s from the snapshot", format, d.Serial, deltas[d.Serial].URI, d.URI)
			}
		}
	}
}

// readFile reads fl back from st, whole or composite, and checks its
// size and, but for a composite gzip copy, its SHA-256.
func readFile(t *testing.T, st *MemStore, fl File) []byte {
	t.Helper()
	b, err := cache.ReadFile(context.Background(), &fl, st.Get)
	if err != nil {
		t.Fatalf("read %s: %v", fl.Path, err)
	}
	if int64(len(b)) != fl.Size || !(fl.Gzip && fl.Composite()) && sha256.Sum256(b) != fl.Sum {
		t.Fatalf("read %s: %d bytes not of its size %d or hash", fl.Path, len(b), fl.Size)
	}
	return b
}

// gunzip decompresses zb, which must be one gzip member and nothing
// after it (the reader checks its CRC-32 and size).
func gunzip(t *testing.T, zb []byte) []byte {
	t.Helper()
	br := bytes.NewReader(zb)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatalf("gzip copy: %v", err)
	}
	zr.Multistream(false)
	b, err := io.ReadAll(zr)
	if err == nil {
		err = zr.Close()
	}
	if err != nil {
		t.Fatalf("gzip copy: %v", err)
	}
	if br.Len() != 0 {
		t.Fatalf("gzip copy: %d bytes after its member", br.Len())
	}
	return b
}
