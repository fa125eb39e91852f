package follow

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestComposite follows one repository twice, storing snapshots whole and
// as fragments (FragmentMin 1): at every serial the composite XML and .bin
// are byte for byte the whole ones (the same hashes in the notifications),
// their gzip copies decompress to them with the standard library, and a
// serial re-encodes only some chunks.
func TestComposite(t *testing.T) {
	e := newEnv(t)
	mk := func(min int64, store *MemStore) *Follower {
		f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: min,
			Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ws, cs := NewMemStore(), NewMemStore()
	whole, comp := mk(-1, ws), mk(1, cs)
	ctx := context.Background()
	for serial := 1; serial <= 8; serial++ {
		if serial > 1 {
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
		}
		e.sync(whole)
		e.sync(comp)
		wh, ch := whole.Head(), comp.Head()
		if !bytes.Equal(wh.NotificationXML, ch.NotificationXML) || !bytes.Equal(wh.NotificationBin, ch.NotificationBin) {
			t.Fatalf("serial %d: the notifications differ", serial)
		}
		find := func(h *Head, format irpki.Format, gz bool) *File {
			for i, f := range h.Files {
				if f.Kind == rrdpxml.KindSnapshot && f.Expires.IsZero() && f.Format == format && f.Gzip == gz {
					return &h.Files[i]
				}
			}
			t.Fatalf("serial %d: no %v snapshot (gzip %v)", serial, format, gz)
			return nil
		}
		for _, format := range []irpki.Format{irpki.FormatXML, irpki.FormatBin} {
			wf, cf := find(wh, format, false), find(ch, format, false)
			if wf.Composite() || !cf.Composite() {
				t.Fatalf("serial %d %v: composite %v and %v, want false and true", serial, format, wf.Composite(), cf.Composite())
			}
			wb, err := cache.ReadFile(ctx, wf, ws.Get)
			if err != nil {
				t.Fatal(err)
			}
			cb, err := cache.ReadFile(ctx, cf, cs.Get)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wb, cb) || wf.Sum != cf.Sum || cf.Size != int64(len(cb)) {
				t.Fatalf("serial %d %v: composite file of %d bytes differs from the whole one of %d", serial, format, len(cb), len(wb))
			}
			zf := find(ch, format, true)
			zb, err := cache.ReadFile(ctx, zf, cs.Get)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(zb)) != zf.Size {
				t.Errorf("serial %d %v: gzip copy of %d bytes, the head says %d", serial, format, len(zb), zf.Size)
			}
			zr, err := gzip.NewReader(bytes.NewReader(zb))
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			plain, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("serial %d %v: gzip copy: %v", serial, format, err)
			}
			if !bytes.Equal(plain, wb) {
				t.Fatalf("serial %d %v: gzip copy decompresses to %d bytes, not the file's %d", serial, format, len(plain), len(wb))
			}
		}
	}
	st := comp.Stats()
	if st.FragmentsReused == 0 || st.FragmentsBuilt == 0 {
		t.Errorf("chunks built %d, reused %d; want both above 0", st.FragmentsBuilt, st.FragmentsReused)
	}
	t.Logf("chunks built %d, reused %d over 8 serials", st.FragmentsBuilt, st.FragmentsReused)
}

// TestResumeFragments: a follower started from a stored composite head
// takes over its fragments (resume): its next serial encodes only the
// chunks that changed, and its snapshot is the one a follower that never
// stopped writes.
func TestResumeFragments(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 2000 // enough objects for several chunks
	e.repo.reset(1)
	store := NewMemStore()
	mk := func(start *Head) *Follower {
		f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
			Start: start, Blobs: store.Get, Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := mk(nil)
	e.sync(a)
	e.repo.advance()
	e.now = e.now.Add(time.Minute)
	e.sync(a)
	b := mk(a.Head())
	e.repo.advance()
	e.now = e.now.Add(time.Minute)
	e.sync(a)
	e.sync(b)
	checkObjects(t, b)
	sa, sb := a.Stats(), b.Stats()
	if sb.Snapshots != 0 || sb.Deltas != 1 {
		t.Fatalf("restarted follower: %d snapshots, %d deltas; want 0 and 1", sb.Snapshots, sb.Deltas)
	}
	total := sb.FragmentsBuilt + sb.FragmentsReused
	if total < 3 || sb.FragmentsBuilt == 0 || sb.FragmentsBuilt >= total {
		t.Errorf("restarted follower's serial: %d chunks built of %d; want some, not all", sb.FragmentsBuilt, total)
	}
	t.Logf("chunks built: the follower that stayed %d of %d, the restarted one %d of %d", sa.FragmentsBuilt, sa.FragmentsBuilt+sa.FragmentsReused, sb.FragmentsBuilt, total)
	if !bytes.Equal(a.Head().NotificationXML, b.Head().NotificationXML) || !bytes.Equal(a.Head().NotificationBin, b.Head().NotificationBin) {
		t.Errorf("the restarted follower's notifications differ from the other's")
	}
}

// TestPassedSnapshots: a follower that passes serials in one delta sync
// also publishes, as retained files, the snapshots of the serials it
// passed, byte for byte those of a follower that stopped there: a fleet
// node polling alone (Redis down) that stopped at serial 2 names a
// snapshot that the node that jumped over it can serve. Whole and
// composite snapshots alike.
func TestPassedSnapshots(t *testing.T) {
	for _, min := range []int64{-1, 1} {
		t.Run(fmt.Sprintf("FragmentMin %d", min), func(t *testing.T) {
			e := newEnv(t)
			mk := func() *Follower {
				f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: NewMemStore(), FragmentMin: min,
					Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			jumper, stopper := mk(), mk()
			e.sync(jumper)
			e.repo.advance()
			e.sync(stopper) // serial 2, by the snapshot
			e.repo.advance()
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
			e.sync(jumper) // deltas 2 to 4
			if s := jumper.Stats(); s.Deltas != 3 || jumper.Head().Serial != 4 {
				t.Fatalf("the jumper: %d deltas to serial %d; want 3 to 4", s.Deltas, jumper.Head().Serial)
			}
			held := map[string]File{}
			for _, f := range jumper.Head().Files {
				held[fmt.Sprint(f.Path, f.Gzip)] = f
			}
			for _, f := range stopper.Head().Files {
				if f.Kind != rrdpxml.KindSnapshot || f.Gzip {
					continue
				}
				g, ok := held[fmt.Sprint(f.Path, false)]
				if !ok || g.Sum != f.Sum || g.Expires.IsZero() {
					t.Errorf("the jumper's head: %s (serial %d) present %v, sum equal %v, retained %v; want a retained copy", f.Path, f.Serial, ok, g.Sum == f.Sum, !g.Expires.IsZero())
				}
			}
		})
	}
}

// checkObjects checks that every object of f's state still has the bytes
// of its hash: its contents were moved to the .bin segments (Realias)
// at the right offsets.
func checkObjects(t *testing.T, f *Follower) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for u, o := range f.cur.objects {
		if sha256.Sum256(o.content) != o.hash {
			t.Fatalf("object %s: its content no longer has its hash", u)
		}
	}
	if f.cur.frags == nil {
		return
	}
	// Every content lies within a .bin segment kept: the decoded copies
	// are garbage.
	type span struct{ lo, hi uintptr }
	var spans []span
	ss := f.segStore(context.Background())
	for _, s := range f.cur.frags.bin {
		b, err := ss.bytes(s) // the store's, for a cold serial's
		if err != nil {
			t.Fatalf("segment %x: %v", s.sum[:8], err)
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		spans = append(spans, span{lo, lo + uintptr(len(b))})
	}
	for u, o := range f.cur.objects {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(o.content)))
		if !slices.ContainsFunc(spans, func(s span) bool { return s.lo <= p && p+uintptr(len(o.content)) <= s.hi }) {
			t.Fatalf("object %s: its content is not within a .bin segment of the state", u)
		}
	}
}

// TestSnapshotRetake: a follower that takes the snapshot again over a
// composite state (the origin went back a serial: a downstream session
// reset, so every chunk is built afresh under the new sessions, see
// composite) moves the freshly decoded objects to the new segments, at
// the right offsets. A follower restarted from the same head before the
// retake (its objects views into the stored segments) does the same work
// and publishes the same head.
func TestSnapshotRetake(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 2000
	e.repo.reset(1)
	store := NewMemStore()
	mk := func(start *Head) *Follower {
		f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
			Start: start, Blobs: store.Get, Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := mk(nil)
	e.sync(f)
	checkObjects(t, f)
	e.repo.advance()
	e.sync(f)
	checkObjects(t, f)
	g := mk(f.Head()) // restarted at serial 2
	before := f.Stats()
	e.repo.rollback(1) // the origin back at serial 1: a fresh snapshot
	e.now = e.now.Add(time.Minute)
	e.sync(f)
	// Before g's sync: the store then holds g's copies of the segments the
	// retake makes again (the same bytes as serial 1's, the same keys).
	checkObjects(t, f)
	e.sync(g)
	st := f.Stats()
	built, reused := st.FragmentsBuilt-before.FragmentsBuilt, st.FragmentsReused-before.FragmentsReused
	if st.Snapshots != 2 || built == 0 || reused != 0 {
		t.Fatalf("got %d snapshots, the retake built %d chunks and reused %d; want 2, some, none (new sessions)", st.Snapshots, built, reused)
	}
	if sg := g.Stats(); sg.Snapshots != 1 || sg.StartFailures != 0 || sg.FragmentsBuilt != built || sg.FragmentsReused != reused {
		t.Fatalf("restarted follower's retake: %d snapshots, %d start failures, chunks built %d reused %d; want 1, 0, %d, %d as the other's",
			sg.Snapshots, sg.StartFailures, sg.FragmentsBuilt, sg.FragmentsReused, built, reused)
	}
	checkObjects(t, g)
	if !bytes.Equal(f.Head().NotificationXML, g.Head().NotificationXML) || !bytes.Equal(f.Head().NotificationBin, g.Head().NotificationBin) {
		t.Error("the restarted follower's notifications after the retake differ from the other's")
	}
}
