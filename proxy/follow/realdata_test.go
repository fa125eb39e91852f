package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestKrillDeltaChain follows the real Krill test bed data: the snapshot
// of serial 2657 with the deltas listed before it, then delta 2658, then
// the repository after a session reset. The origin serves the files in
// place; only the notifications are rewritten to name the local origin
// (the same sessions, serials and hashes).
func TestKrillDeltaChain(t *testing.T) {
	res := realdata.Path(t, "krill-sync", "test-resources")
	dir := t.TempDir()
	for link, target := range map[string]string{"a": "rrdp-rev2658", "b": "rrdp-rev2-session-reset"} {
		if err := os.Symlink(filepath.Join(res, target), filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
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

	// publish writes the real notification at file, rewritten to name
	// the files under link on the local origin, keeping the deltas up to
	// serial and naming snapshot as the snapshot.
	const krill = "https://krill-ui-dev.do.nlnetlabs.nl/rrdp/"
	read := func(link, rel string) *rrdpxml.Notification {
		b, err := os.ReadFile(filepath.Join(dir, link, rel))
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	publish := func(link string, n *rrdpxml.Notification) {
		local := func(u string) string { return o.URL() + link + "/" + strings.TrimPrefix(u, krill) }
		n.Snapshot.URI = local(n.Snapshot.URI)
		for i := range n.Deltas {
			n.Deltas[i].URI = local(n.Deltas[i].URI)
		}
		var buf bytes.Buffer
		if err := rrdpxml.EncodeNotification(&buf, n); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "notification.xml"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snapshotObjects := func(link, rel string) map[string][]byte {
		b, err := os.ReadFile(filepath.Join(dir, link, rel))
		if err != nil {
			t.Fatal(err)
		}
		d := rrdpxml.NewDecoder(bytes.NewReader(b), rrdpxml.Limits{})
		defer d.Close()
		if _, err := d.Header(); err != nil {
			t.Fatal(err)
		}
		objs := map[string][]byte{}
		for {
			e, err := d.Next()
			if err == io.EOF {
				return objs
			}
			if err != nil {
				t.Fatal(err)
			}
			objs[e.URI] = bytes.Clone(e.Content)
		}
	}
	store := NewMemStore()
	f, err := New(Config{URL: o.URL() + "notification.xml", Client: c, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		if _, err := f.Sync(context.Background()); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	check := func(want map[string][]byte, session string, serial uint64, deltas int) {
		t.Helper()
		got := 0
		f.WalkObjects(func(u string, c []byte) error {
			got++
			if !bytes.Equal(want[u], c) {
				t.Errorf("object %s differs from the real snapshot", u)
			}
			return nil
		})
		if got != len(want) {
			t.Errorf("got %d objects, want %d", got, len(want))
		}
		h := f.Head()
		checkHead(t, store, h, f.cfg.Base)
		n, _, _ := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{})
		if n.SessionID != session || n.Serial != serial || len(n.Deltas) != deltas {
			t.Errorf("served session %s serial %d with %d deltas, want %s %d with %d", n.SessionID, n.Serial, len(n.Deltas), session, serial, deltas)
		}
	}

	// Serial 2657 from its snapshot; the real deltas 2654-2657 check out
	// back from it and are served.
	n := read("a", "notification.xml")
	n.Serial = 2657
	n.Snapshot = rrdpxml.SnapshotRef{URI: krill + n.SessionID + "/2657/rnd-sn/snapshot.xml",
		Hash: sha256File(t, filepath.Join(dir, "a", n.SessionID, "2657", "rnd-sn", "snapshot.xml"))}
	n.Deltas = n.Deltas[1:]
	publish("a", n)
	sync()
	check(snapshotObjects("a", n.SessionID+"/2657/rnd-sn/snapshot.xml"), n.SessionID, 2657, 4)

	// The real notification at 2658: delta 2658 gives exactly snapshot 2658.
	publish("a", read("a", "notification.xml"))
	sync()
	check(snapshotObjects("a", n.SessionID+"/2658/rnd-sn/snapshot.xml"), n.SessionID, 2658, 5)
	if s := f.Stats(); s.Snapshots != 1 || s.Deltas != 1 || s.Invalid != 0 {
		t.Errorf("got %d snapshots, %d deltas, %d invalid; want 1, 1, 0", s.Snapshots, s.Deltas, s.Invalid)
	}

	// The session reset: the new session's snapshot, its deltas 1-2.
	r := read("b", "notifyerthingy.xml")
	publish("b", r)
	sync()
	check(snapshotObjects("b", r.SessionID+"/2/snapshot.xml"), r.SessionID, 2, 2)
	if s := f.Stats(); s.Snapshots != 2 || s.Resets != 0 || s.Invalid != 0 {
		t.Errorf("got %d snapshots, %d downstream resets, %d invalid; want 2, 0, 0", s.Snapshots, s.Resets, s.Invalid)
	}
}

func sha256File(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Sum(b)
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
