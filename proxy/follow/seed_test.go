package follow

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// restart returns a follower that continues from the head of f, reading
// blobs from the env's store, as a restarted node does.
func (e *env) restart(f *Follower, blobs func(context.Context, [32]byte) ([]byte, error)) *Follower {
	e.t.Helper()
	if blobs == nil {
		blobs = func(_ context.Context, sum [32]byte) ([]byte, error) {
			b, ok := e.store.Blob(sum)
			if !ok {
				return nil, fmt.Errorf("blob %x: not found", sum[:8])
			}
			return b, nil
		}
	}
	g, err := New(Config{
		URL: f.cfg.URL, Client: e.client, Store: e.store, Start: f.Head(), Blobs: blobs,
		Now:    func() time.Time { return e.now },
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func TestStart(t *testing.T) {
	for _, file := range []string{"notification.xml", "notification.bin"} {
		t.Run(file, func(t *testing.T) {
			e := newEnv(t)
			f := e.follower(file)
			e.sync(f)
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
			e.sync(f) // serial 2 from a delta; the first snapshot is retained
			start := f.Head()
			retained := map[string]time.Time{}
			for _, fl := range start.Files {
				if !fl.Expires.IsZero() {
					retained[fl.Path] = fl.Expires
				}
			}
			if len(retained) == 0 {
				t.Fatal("the start head retains no file")
			}

			g := e.restart(f, nil)
			if g.Head() != start {
				t.Fatal("Head before the first sync is not Start")
			}
			e.repo.advance()
			e.repo.advance()
			e.reset()
			e.now = e.now.Add(time.Minute)
			if !e.sync(g) {
				t.Fatal("got no change")
			}
			checkState(t, g, e.repo)
			if s := g.Stats(); s.Snapshots != 0 || s.Deltas != 2 || s.StartFailures != 0 {
				t.Errorf("got %d snapshots, %d deltas, %d start failures; want 0, 2, 0", s.Snapshots, s.Deltas, s.StartFailures)
			}
			if n := e.snapshotFetches(); n != 0 {
				t.Errorf("the origin served %d snapshots, want 0", n)
			}
			h := g.Head()
			n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Deltas) != 3 || n.SessionID != func() string { x, _ := start.Sessions(); return x }() {
				t.Errorf("served notification: session %s, %d deltas; want Start's session and 3 deltas", n.SessionID, len(n.Deltas))
			}
			for _, fl := range h.Files {
				if want, ok := retained[fl.Path]; ok && !fl.Expires.Equal(want) {
					t.Errorf("%s expires %v, want %v as in Start", fl.Path, fl.Expires, want)
				}
				delete(retained, fl.Path)
			}
			if len(retained) != 0 {
				t.Errorf("retained files of Start dropped: %v", retained)
			}
		})
	}
}

func TestStartUnreadable(t *testing.T) {
	e := newEnv(t)
	f := e.follower("notification.xml")
	e.sync(f)
	start := f.Head()
	g := e.restart(f, func(context.Context, [32]byte) ([]byte, error) { return nil, fmt.Errorf("blob store down") })
	// The origin has not moved: the snapshot at Start's serial must not
	// be published under Start's session again.
	if !e.sync(g) {
		t.Fatal("got no change")
	}
	s := g.Stats()
	if s.StartFailures != 1 || s.Snapshots != 1 {
		t.Errorf("got %d start failures, %d snapshots; want 1, 1", s.StartFailures, s.Snapshots)
	}
	h := g.Head()
	sx, sb := start.Sessions()
	if hx, hb := h.Sessions(); hx == sx || hb == sb || h.Resets != 1 {
		t.Errorf("after an unreadable Start at the same serial: sessions %s %s (resets %d), want new ones", hx, hb, h.Resets)
	}
	checkHead(t, e.store, h, g.cfg.Base)
	if !strings.Contains(e.log.String(), "cannot continue from the stored head") {
		t.Errorf("log lacks the start failure:\n%s", e.log.String())
	}
	// A node restarted from the reset head continues under its session.
	k := e.restart(g, nil)
	e.repo.advance()
	e.sync(k)
	if k.Head().Resets != 1 || k.Stats().Deltas != 1 {
		t.Errorf("after a restart: resets %d, deltas %d; want 1, 1", k.Head().Resets, k.Stats().Deltas)
	}
	checkHead(t, e.store, k.Head(), k.cfg.Base)
}

func TestListedDeltasAfterSnapshot(t *testing.T) {
	for _, file := range []string{"notification.xml", "notification.bin"} {
		t.Run(file, func(t *testing.T) {
			e := newEnv(t)
			for range 3 {
				e.repo.advance()
			}
			f := e.follower(file)
			e.sync(f)
			checkState(t, f, e.repo)
			h := f.Head()
			n, _, _ := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
			nb, _ := irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{})
			if len(n.Deltas) != 3 || len(nb.Deltas) != 3 {
				t.Fatalf("served notifications list %d and %d deltas, want 3", len(n.Deltas), len(nb.Deltas))
			}
			// The origin's own delta files are served as they are.
			up := e.repo.deltas
			if file == "notification.bin" {
				up = e.repo.binDeltas
				n = nb
			}
			for i, d := range n.Deltas {
				if d.Hash != up[len(up)-1-i].Hash && d.Hash != up[i].Hash {
					t.Errorf("delta %d: hash %x, not the origin's", d.Serial, d.Hash[:8])
				}
			}
		})
	}
	t.Run("a listed delta inconsistent with the snapshot", func(t *testing.T) {
		e := newEnv(t)
		e.repo.advance()
		e.repo.advance()
		// Delta 3 is swapped for one of another history: its hash matches
		// the notification, but it does not lead to the snapshot.
		e.repo.rollback(2)
		e.repo.advance()
		other := e.repo.deltas[len(e.repo.deltas)-1]
		b, err := os.ReadFile(filepath.Join(e.repo.dir, strings.TrimPrefix(other.URI, e.origin.URL())))
		if err != nil {
			t.Fatal(err)
		}
		e.repo.write("other-delta.xml", b)
		other.URI = e.repo.base + "other-delta.xml"
		e.repo.rollback(2)
		e.repo.advance()
		x := e.repo.notification(false)
		x.Deltas[len(x.Deltas)-1] = other
		e.repo.writeNotifications(x, e.repo.notification(true))
		f := e.follower("notification.xml")
		e.sync(f)
		n, _, _ := rrdpxml.DecodeNotification(bytes.NewReader(f.Head().NotificationXML), rrdpxml.Limits{})
		if len(n.Deltas) != 0 {
			t.Errorf("served notification lists %d deltas, want 0", len(n.Deltas))
		}
		if s := f.Stats(); s.Invalid != 1 || s.Snapshots != 1 {
			t.Errorf("got %d invalid, %d snapshots; want 1, 1", s.Invalid, s.Snapshots)
		}
	})
}

func TestServedSessionOrder(t *testing.T) {
	prev := &Head{Session: "u", Serial: 5, Origin: irpki.FormatXML}
	for _, tc := range []struct {
		name string
		next Head
		ok   bool
	}{
		{"next serial", Head{Session: "u", Serial: 6, Origin: irpki.FormatXML}, true},
		{"same serial", Head{Session: "u", Serial: 5, Origin: irpki.FormatXML}, false},
		{"lower serial", Head{Session: "u", Serial: 4, Origin: irpki.FormatXML}, false},
		{"lower serial after a reset", Head{Session: "u", Serial: 4, Origin: irpki.FormatXML, Resets: 1}, true},
		{"new upstream session", Head{Session: "v", Serial: 1, Origin: irpki.FormatXML}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkOrder(prev, &tc.next); (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
