package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// transparent returns a transparent follower of the env's XML
// notification, publishing under repo (the store key) and continuing
// from start if set.
func (e *env) transparent(repo string, start *Head) *Follower {
	e.t.Helper()
	return e.transparentWith(repo, start, 0)
}

// transparentWith is transparent with Config.FragmentMin fragMin.
func (e *env) transparentWith(repo string, start *Head, fragMin int64) *Follower {
	e.t.Helper()
	f, err := New(Config{
		URL: e.repo.base + "notification.xml", Repo: repo, Client: e.client, Store: e.store, Transparent: true,
		Start: start, FragmentMin: fragMin,
		Blobs: func(_ context.Context, sum [32]byte) ([]byte, error) {
			if b, ok := e.store.Blob(sum); ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
		Now:    func() time.Time { return e.now },
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// originFile reads a file of the origin's directory rrdp/.
func (e *env) originFile(rel string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.repo.dir, "rrdp", filepath.FromSlash(rel)))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// checkOrigin checks that f's head serves the origin's notification.xml
// byte for byte and, at the origin's own path, the origin's bytes of the
// snapshot and every delta it names, and their gzip copies the same bytes
// once decompressed; and the head as checkState does.
func checkOrigin(t *testing.T, e *env, f *Follower) {
	t.Helper()
	checkState(t, f, e.repo)
	h := f.Head()
	if !h.Transparent {
		t.Fatal("head not marked transparent")
	}
	if want := e.originFile("notification.xml"); !bytes.Equal(h.NotificationXML, want) {
		t.Fatalf("notification.xml differs from the origin's:\n%s\nwant\n%s", h.NotificationXML, want)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	byPath, gzPath := map[string]File{}, map[string]File{}
	for _, fl := range h.Files {
		if fl.Format == irpki.FormatXML {
			if fl.Gzip {
				gzPath[fl.Path] = fl
			} else {
				byPath[fl.Path] = fl
			}
		}
	}
	uris := []string{n.Snapshot.URI}
	for _, d := range n.Deltas {
		uris = append(uris, d.URI)
	}
	for _, u := range uris {
		rel := strings.TrimPrefix(u, e.repo.base)
		fl, ok := byPath[rel]
		if !ok || !fl.Expires.IsZero() {
			t.Fatalf("%s: not served at %s (file %+v)", u, rel, fl)
		}
		want := e.originFile(rel)
		if b := readFile(t, e.store, fl); !bytes.Equal(b, want) {
			t.Fatalf("%s: the proxy's bytes differ from the origin's", u)
		}
		gz, ok := gzPath[rel]
		if !ok || !gz.Expires.IsZero() {
			t.Fatalf("%s: no gzip copy served at %s", u, rel)
		}
		if b := gunzip(t, readFile(t, e.store, gz)); !bytes.Equal(b, want) {
			t.Fatalf("%s: the gzip copy decompresses to other bytes than the origin's", u)
		}
	}
}

// TestTransparent follows an origin over eight serials, by snapshot and
// by deltas, across a session reset: at every step the proxy serves the
// origin's notification.xml, snapshot and deltas byte for byte at the
// origin's paths; after a delta sync the origin's snapshot was fetched;
// files that left the notification stay for the retention; and a node
// that joins late by the snapshot path serves the same .bin bytes as the
// one that followed by deltas.
func TestTransparent(t *testing.T) {
	e := newEnv(t)
	f := e.transparent("", nil)
	e.sync(f)
	checkOrigin(t, e, f)
	first := f.Head()
	for i, step := range []int{1, 2, 1, 3} {
		for range step {
			e.repo.advance()
		}
		e.reset()
		e.now = e.now.Add(time.Minute)
		if !e.sync(f) {
			t.Fatalf("step %d: got no change", i)
		}
		checkOrigin(t, e, f)
		if n := e.snapshotFetches(); n != 1 {
			t.Errorf("step %d: the origin served %d snapshots, want 1 (the new serial's)", i, n)
		}
	}
	if s := f.Stats(); s.Snapshots != 1 || s.Deltas != 7 || s.DeltaFailures != 0 || s.SnapshotMismatches != 0 || s.Errors != 0 {
		t.Errorf("got %+v, want 1 snapshot, 7 deltas, no failure", s)
	}
	// The first snapshot left the notification; it is retained.
	h := f.Head()
	for _, old := range first.Files {
		if old.Kind != rrdpxml.KindSnapshot {
			continue
		}
		found := false
		for _, fl := range h.Files {
			if fl.Path == old.Path && fl.Gzip == old.Gzip {
				found = !fl.Expires.IsZero()
			}
		}
		if !found {
			t.Errorf("%s left the head, want it retained", old.Path)
		}
	}

	// A session reset at the origin: the origin's new session, as it is.
	e.repo.reset(99)
	e.reset()
	e.sync(f)
	checkOrigin(t, e, f)
	for range 2 {
		e.repo.advance()
		e.sync(f)
		checkOrigin(t, e, f)
	}
	if s := f.Stats(); s.Snapshots != 2 || s.Resets != 0 {
		t.Errorf("after the session reset: %d snapshots, %d downstream resets; want 2, 0", s.Snapshots, s.Resets)
	}

	// A late node takes the snapshot and the listed deltas: its .bin
	// bytes are those of the node that followed the deltas.
	g := e.transparent("late", nil)
	e.sync(g)
	checkOrigin(t, e, g)
	hf, hg := f.Head(), g.Head()
	if !bytes.Equal(hf.NotificationBin, hg.NotificationBin) {
		t.Error("notification.bin of the node that followed by deltas differs from the late node's")
	}
	if !bytes.Equal(hf.NotificationXML, hg.NotificationXML) {
		t.Error("notification.xml of the two nodes differs")
	}
	nb, err := irpki.UnmarshalNotification(hg.NotificationBin, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nb.Deltas) != 2 {
		t.Errorf("notification.bin lists %d deltas, want the 2 of the new session", len(nb.Deltas))
	}
}

// TestTransparentBadInput: an origin that lists a file it does not serve
// or whose hash fails, or that names a file outside its notification's
// directory, leaves the previous serial served and the error counted by
// kind; once the origin heals, the next sync publishes.
func TestTransparentBadInput(t *testing.T) {
	snapPath := func(r *testRepo) string { return strings.TrimPrefix(r.snap.URI, r.base) }
	for _, tc := range []struct {
		name  string
		spoil func(e *env) (heal func())
		want  error
		count func(Stats) uint64
	}{
		{"snapshot 404", func(e *env) func() {
			e.repo.advance()
			p := filepath.Join(e.repo.dir, "rrdp", filepath.FromSlash(snapPath(e.repo)))
			b := e.originFile(snapPath(e.repo))
			if err := os.Remove(p); err != nil {
				e.t.Fatal(err)
			}
			return func() { os.WriteFile(p, b, 0o644) }
		}, upstream.ErrStatus, func(s Stats) uint64 { return s.HTTPStatus }},
		{"snapshot hash mismatch", func(e *env) func() {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Snapshot.Hash[0] ^= 1
			e.repo.writeNotifications(x, b)
			return e.repo.writeNotification
		}, ErrHash, func(s Stats) uint64 { return s.HashMismatches }},
		{"listed delta 404", func(e *env) func() {
			e.repo.advance()
			e.repo.advance()
			rel := strings.TrimPrefix(e.repo.deltas[0].URI, e.repo.base)
			b := e.originFile(rel)
			p := filepath.Join(e.repo.dir, "rrdp", filepath.FromSlash(rel))
			if err := os.Remove(p); err != nil {
				e.t.Fatal(err)
			}
			return func() { os.WriteFile(p, b, 0o644) }
		}, upstream.ErrStatus, func(s Stats) uint64 { return s.HTTPStatus }},
		{"delta outside the directory", func(e *env) func() {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Deltas[0].URI = strings.Replace(x.Deltas[0].URI, "/rrdp/", "/elsewhere/", 1)
			e.repo.writeNotifications(x, b)
			return e.repo.writeNotification
		}, ErrOutside, func(s Stats) uint64 { return s.CrossOrigin }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.transparent("", nil)
			e.sync(f)
			before := f.Head()
			heal := tc.spoil(e)
			_, err := f.Sync(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			s := f.Stats()
			if s.Errors != 1 || s.Serial != 1 || tc.count(s) == 0 || s.LastErr == "" {
				t.Errorf("got %+v, want 1 error counted by kind at serial 1", s)
			}
			if f.Head() != before || e.store.Head(f.cfg.Repo) != before {
				t.Error("the head changed after a failed sync")
			}
			// A first sync against the broken origin publishes nothing.
			g := e.transparent("fresh", nil)
			if _, err := g.Sync(context.Background()); !errors.Is(err, tc.want) {
				t.Errorf("first sync: got %v, want %v", err, tc.want)
			}
			if h := e.store.Head("fresh"); h != nil {
				t.Errorf("first sync against a broken origin published serial %d", h.Serial)
			}
			heal()
			e.sync(f)
			checkOrigin(t, e, f)
		})
	}
}

// TestTransparentSnapshotMismatch: an origin whose snapshot does not hold
// the state its deltas lead to. The snapshot's state is taken and the
// mismatch counted; the .bin moves to a new session (its deltas would not
// lead to its snapshot) while the XML stays the origin's. Whole and
// composite (FragmentMin 1).
func TestTransparentSnapshotMismatch(t *testing.T) {
	for _, fragMin := range []int64{0, 1} {
		t.Run(fmt.Sprintf("FragmentMin %d", fragMin), func(t *testing.T) {
			e := newEnv(t)
			f := e.transparentWith("", nil, fragMin)
			e.sync(f)
			e.repo.advance()
			e.repo.objs["rsync://rpki.example.net/repo/extra.roa"] = []byte("only in the snapshot")
			e.repo.writeSnapshot()
			e.repo.writeNotification()
			e.sync(f)
			checkOrigin(t, e, f) // the objects are the snapshot's
			s, h := f.Stats(), f.Head()
			if s.SnapshotMismatches != 1 || s.Resets != 1 || h.Resets != 1 {
				t.Errorf("got %d mismatches, %d resets (head %d); want 1, 1, 1", s.SnapshotMismatches, s.Resets, h.Resets)
			}
			if !strings.Contains(e.log.String(), "rsync://rpki.example.net/repo/extra.roa") {
				t.Errorf("the log does not name the differing object:\n%s", e.log.String())
			}
			nb, err := irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, bs := h.Sessions(); nb.SessionID != bs || bs == e.repo.session || len(nb.Deltas) != 0 {
				t.Errorf("notification.bin: session %s with %d deltas, want a new session %s without deltas", nb.SessionID, len(nb.Deltas), bs)
			}
			// The next serial continues with deltas from the snapshot's state.
			e.repo.advance()
			e.sync(f)
			checkOrigin(t, e, f)
			if s := f.Stats(); s.SnapshotMismatches != 1 || s.Deltas != 2 {
				t.Errorf("next serial: %d mismatches, %d deltas; want 1, 2", s.SnapshotMismatches, s.Deltas)
			}
		})
	}
}

// TestTransparentBackwardsAndDesync: the origin's notification is served
// as it is, whatever its session handling; only the .bin, the proxy's own
// format, moves to a new session.
func TestTransparentBackwardsAndDesync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *testRepo)
		count  func(Stats) uint64
	}{
		{"serial goes backwards", func(r *testRepo) { r.rollback(2) }, func(s Stats) uint64 { return s.Backwards }},
		{"known delta changes its hash", func(r *testRepo) {
			r.rollback(1)
			r.advance()
			r.advance()
			r.advance()
		}, func(s Stats) uint64 { return s.Desyncs }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.transparent("", nil)
			e.repo.advance()
			e.repo.advance()
			e.sync(f) // serial 3
			_, bin0 := f.Head().Sessions()
			tc.change(e.repo)
			if !e.sync(f) {
				t.Fatal("got no change")
			}
			checkOrigin(t, e, f)
			s, h := f.Stats(), f.Head()
			if tc.count(s) != 1 || s.Resets != 1 || s.Errors != 0 {
				t.Errorf("got %+v, want the case counted once and one .bin reset", s)
			}
			if xs, bs := h.Sessions(); xs != e.repo.session || bs == bin0 {
				t.Errorf("sessions %s and %s, want the origin's %s and a new .bin one", xs, bs, e.repo.session)
			}
		})
	}
}

// TestTransparentListedDeltas: a node starting from the snapshot serves
// every delta the origin lists; one that is well formed and matches its
// hash but does not lead to the snapshot is served as the origin's XML
// and left out of notification.bin.
func TestTransparentListedDeltas(t *testing.T) {
	e := newEnv(t)
	e.repo.advance()
	e.repo.advance()
	e.repo.advance()
	// Delta 2 rewritten: it now publishes an object no later state holds.
	var buf bytes.Buffer
	w, err := rrdpxml.NewWriter(&buf, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: e.repo.session, Serial: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.Publish("rsync://rpki.example.net/repo/stray.roa", nil, []byte("stray"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(e.repo.deltas[0].URI, e.repo.base)
	e.repo.write(rel, buf.Bytes())
	e.repo.deltas[0].Hash = sha256.Sum256(buf.Bytes())
	e.repo.writeNotification()

	f := e.transparent("", nil)
	e.sync(f)
	checkOrigin(t, e, f)
	nb, err := irpki.UnmarshalNotification(f.Head().NotificationBin, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for _, d := range nb.Deltas {
		serials = append(serials, d.Serial)
	}
	if len(serials) != 2 || serials[0] != 3 || serials[1] != 4 {
		t.Errorf("notification.bin lists deltas %v, want [3 4]: 2 does not lead to the state before 3", serials)
	}
	if !strings.Contains(e.log.String(), "serving it as the origin's XML only") {
		t.Errorf("the log does not tell of the delta left out of .bin:\n%s", e.log.String())
	}
}

// TestTransparentStart: a restarted transparent node continues with
// deltas from its stored head; a stored head of the regenerating mode is
// not continued from (its XML is at other paths): the first sync takes
// the snapshot.
func TestTransparentStart(t *testing.T) {
	e := newEnv(t)
	f := e.transparent("t1", nil)
	e.sync(f)
	e.repo.advance()
	e.sync(f)
	g := e.transparent("t1", f.Head())
	e.repo.advance()
	e.repo.advance()
	e.reset()
	e.sync(g)
	checkOrigin(t, e, g)
	if s := g.Stats(); s.Snapshots != 0 || s.Deltas != 2 || s.StartFailures != 0 {
		t.Errorf("got %d snapshots, %d deltas, %d start failures; want 0, 2, 0", s.Snapshots, s.Deltas, s.StartFailures)
	}

	r := e.follower("notification.xml") // regenerating, key URL
	e.sync(r)
	tr := e.transparent(r.cfg.Repo, r.Head())
	if !e.sync(tr) {
		t.Fatal("a transparent node started from a regenerating head: got no change at the same serial")
	}
	checkOrigin(t, e, tr)
	if s := tr.Stats(); s.StartFailures != 1 || s.Snapshots != 1 {
		t.Errorf("got %d start failures, %d snapshots; want 1, 1", s.StartFailures, s.Snapshots)
	}
}

func TestTransparentPaths(t *testing.T) {
	f, err := New(Config{URL: "https://rrdp.example.net/rrdp/notification.xml", Transparent: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uri, want string
	}{
		{"https://rrdp.example.net/rrdp/s/1/abc/snapshot.xml", "s/1/abc/snapshot.xml"},
		{"https://rrdp.example.net/rrdp/snapshot-1.xml", "snapshot-1.xml"},
		{"https://rrdp.example.net/rrdp/a%20b.xml", "a b.xml"},
		{"https://rrdp.example.net/other/snapshot.xml", ""},
		{"https://rrdp.example.net/rrdp/../snapshot.xml", ""},
		{"https://rrdp.example.net/rrdp/s//snapshot.xml", ""},
		{"https://rrdp.example.net/rrdp/s/snapshot.xml?x=1", ""},
		{"https://rrdp.example.net/rrdp/notification.xml", ""},
		{"https://rrdp.example.net/rrdp/notification.bin", ""},
		{"https://rrdp.example.net/rrdp/s/", ""},
	} {
		got, err := f.rel(tc.uri)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrOutside) {
			t.Errorf("rel(%s): got %q, %v; want %q", tc.uri, got, err, tc.want)
		}
	}
	if _, err := New(Config{URL: "https://rrdp.example.net/rrdp/notification.xml", Base: "https://rrdp.example.net/other/", Transparent: true}); err == nil {
		t.Error("a transparent follower whose base is not the origin's directory: got no error")
	}
}
