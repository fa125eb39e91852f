package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestColdSerial: with a state directory, a serial that builds many chunks
// is cold (segStore): its segments go to the store as they are built and
// the follower keeps none of their bytes (after any serial it keeps none
// once the head is in place: release). Its head, files and
// notifications are byte for byte those of a follower that keeps them (a
// MemStore); once the head is in place the objects of the chunks built are
// views into the .bin segments the cache pins, and the cache holds the
// new state in memory again (no cold bytes left). A sync over two deltas,
// whose passed serial's snapshot is cold too and retained, does the same,
// and every file of the head reads back whole with its hash.
func TestColdSerial(t *testing.T) {
	e := newEnv(t)
	e.repo.count, e.repo.changes = 8000, 400
	e.repo.reset(1)
	a, b, c := coldPair(t, e)
	var prev *fragments // b's, of the serial before
	files := func(h *Head) []string {
		var s []string
		for _, f := range h.Files {
			s = append(s, fmt.Sprintf("%s gzip=%v %x %d %x %v", f.Path, f.Gzip, f.Sum, f.Size, f.Index, f.Expires))
		}
		slices.Sort(s)
		return s
	}
	step := func(advances int, wantCold bool) {
		t.Helper()
		for range advances {
			e.repo.advance()
		}
		e.now = e.now.Add(time.Minute)
		e.sync(a)
		built := b.Stats().FragmentsBuilt
		e.sync(b)
		ha, hb := a.Head(), b.Head()
		if !bytes.Equal(ha.NotificationXML, hb.NotificationXML) || !bytes.Equal(ha.NotificationBin, hb.NotificationBin) {
			t.Fatalf("serial %d: the cold follower's notifications differ from the other's", hb.Serial)
		}
		if fa, fb := files(ha), files(hb); !slices.Equal(fa, fb) {
			t.Fatalf("serial %d: the cold follower's files differ:\n%v\nwant\n%v", hb.Serial, fb, fa)
		}
		b.mu.Lock()
		fr := b.cur.frags
		b.mu.Unlock()
		if fr.cold != wantCold {
			t.Fatalf("serial %d: cold %v, want %v (%d chunks built)", hb.Serial, fr.cold, wantCold, b.Stats().FragmentsBuilt-built)
		}
		// builtBytes counts every segment the chunks built made: at
		// least the new ones (a chunk built again for its group's
		// length may make its XML segment again, the same bytes).
		if prev != nil && advances == 1 { // over two, the passed serial built some
			var fresh int64
			old := []map[[32]byte]piece{prev.xml, prev.bin, prev.xgz, prev.bgz}
			for i, m := range []map[[32]byte]piece{fr.xml, fr.bin, fr.xgz, fr.bgz} {
				for sum, p := range m {
					if _, ok := old[i][sum]; !ok {
						fresh += p.n
					}
				}
			}
			if fr.builtBytes < fresh || fr.builtBytes == 0 {
				t.Errorf("serial %d: builtBytes %d, want at least the %d bytes of the new segments", hb.Serial, fr.builtBytes, fresh)
			}
		}
		prev = fr
		// Cold or not, once the head is in place the store's copy of a
		// segment is the only one (release).
		for _, m := range []map[[32]byte]piece{fr.xml, fr.bin, fr.xgz, fr.bgz} {
			for _, p := range m {
				if p.b != nil {
					t.Fatalf("serial %d: the follower keeps the bytes of segment %x", hb.Serial, p.sum[:8])
				}
			}
		}
		checkObjects(t, b)
		if st := c.Stats(); st.ColdBytes != 0 {
			t.Errorf("serial %d: %d bytes of the state not read back into memory", hb.Serial, st.ColdBytes)
		}
		ctx := context.Background()
		for i := range hb.Files {
			f := &hb.Files[i]
			got, err := cache.ReadFile(ctx, f, c.Blob)
			if err != nil {
				t.Fatalf("serial %d: read %s: %v", hb.Serial, f.Path, err)
			}
			if int64(len(got)) != f.Size {
				t.Fatalf("serial %d: %s (gzip %v): %d bytes read back, want %d", hb.Serial, f.Path, f.Gzip, len(got), f.Size)
			}
			if f.Gzip {
				// A gzip copy's Sum is its part list's: its content is
				// the plain file's, by path.
				got = gunzip(t, got)
				plain := slices.IndexFunc(hb.Files, func(p File) bool { return p.Path == f.Path && !p.Gzip })
				if plain < 0 || sha256.Sum256(got) != hb.Files[plain].Sum {
					t.Fatalf("serial %d: the gzip copy of %s does not hold the file", hb.Serial, f.Path)
				}
				continue
			}
			if sha256.Sum256(got) != f.Sum {
				t.Fatalf("serial %d: %s does not read back with its hash", hb.Serial, f.Path)
			}
		}
	}
	step(0, false) // serial 1, the snapshot: hot, no old state beside it
	step(1, true)
	step(2, true) // two deltas: the passed serial's snapshot too
	e.repo.changes = 1
	step(1, false) // one chunk: kept, reading segments of the cold serial from the store
}

// TestForceCollect: readBack forces its collections for a cold sync whose
// segments reach collectAbove, over all its fragments, and not below.
func TestForceCollect(t *testing.T) {
	for _, c := range []struct {
		name  string
		sizes []int64
		want  bool
	}{
		{"none", nil, false},
		{"a small cold serial", []int64{20 << 20}, false},
		{"just below", []int64{collectAbove - 1}, false},
		{"at the bound", []int64{collectAbove}, true},
		{"a sync over deltas adding up", []int64{40 << 20, 30 << 20}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var frs []*fragments
			for _, n := range c.sizes {
				frs = append(frs, &fragments{builtBytes: n})
			}
			if got := forceCollect(frs); got != c.want {
				t.Errorf("forceCollect(%v) = %v, want %v", c.sizes, got, c.want)
			}
		})
	}
}

// TestColdSyncOverlap: one sync over two deltas, one of which builds
// enough chunks to be cold and one not, both replacing the same object:
// the object ends with its content of the sync's serial (not the other
// delta's), in either order, and the next serial, which encodes its chunk
// again, writes the files of a follower that keeps every segment.
func TestColdSyncOverlap(t *testing.T) {
	for _, order := range []string{"cold then hot", "hot then cold"} {
		t.Run(order, func(t *testing.T) {
			e := newEnv(t)
			e.repo.count = 8000
			e.repo.reset(1)
			a, b, _ := coldPair(t, e)
			e.sync(a)
			e.sync(b)
			uris := e.repo.sortedURIs()
			x := uris[len(uris)/2]
			big, small := 400, 1
			if order == "hot then cold" {
				big, small = small, big
			}
			e.repo.changes, e.repo.also = big, []string{x}
			e.repo.advance()
			e.repo.changes, e.repo.also = small, []string{x}
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
			e.sync(a)
			e.sync(b)
			b.mu.Lock()
			got := b.cur.objects[x].content
			b.mu.Unlock()
			if !bytes.Equal(got, e.repo.objs[x]) {
				t.Fatalf("object %s: content not that of serial %d (that of serial %d: %v)", x, e.repo.serial,
					e.repo.serial-1, bytes.Equal(got, e.repo.history[e.repo.serial-1][x]))
			}
			checkObjects(t, b)
			// A neighbour changes: x's chunk is encoded again.
			e.repo.changes, e.repo.also = 1, []string{uris[len(uris)/2+1]}
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
			e.sync(a)
			e.sync(b)
			if !bytes.Equal(a.Head().NotificationXML, b.Head().NotificationXML) || !bytes.Equal(a.Head().NotificationBin, b.Head().NotificationBin) {
				t.Error("the next serial's notifications differ from those of the follower that keeps every segment")
			}
		})
	}
}

// TestRetakeSameSession: a snapshot taken again within the session (more
// deltas behind than MaxDeltas) moves the objects it decoded to the
// segments kept, although the fragments hold no bytes (release): they are
// read from the store.
func TestRetakeSameSession(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 2000
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1, MaxDeltas: 1,
		Blobs: store.Get, Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	e.repo.advance()
	e.repo.advance()
	e.now = e.now.Add(time.Minute)
	e.sync(f)
	if st := f.Stats(); st.Snapshots != 2 || st.FragmentsReused == 0 {
		t.Fatalf("%d snapshots, %d chunks reused; want 2 and some (a retake in the session)", st.Snapshots, st.FragmentsReused)
	}
	checkObjects(t, f)
}

// coldPair returns two followers of e's origin with every snapshot
// composite: a keeps every segment (a MemStore), b publishes into c, a
// cache on a state directory, where big serials are cold.
func coldPair(t *testing.T, e *env) (a, b *Follower, c *cache.Cache) {
	t.Helper()
	ds, err := diskstore.Open(diskstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c, err = cache.New(cache.Config{Tiers: []cache.Tier{ds}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	mk := func(store Store, blobs cache.Getter) *Follower {
		f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
			Blobs: blobs, Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	hot := NewMemStore()
	return mk(hot, hot.Get), mk(c, c.Blob), c
}

// TestRetainedLost: a follower publishing into a cache on a capped state
// directory leaves out of its next head the retained files the directory
// dropped to keep to its cap (Cache.Lost), so that its head grows with
// what the cap keeps, not with the retention: every retained file it
// names, the cache can still serve (Hold). Without a cap every serial's
// snapshot stays named for the retention.
func TestRetainedLost(t *testing.T) {
	e := newEnv(t)
	e.repo.count, e.repo.changes = 400, 100
	e.repo.reset(1)
	ctx := context.Background()
	follower := func(max int64) (*Follower, *cache.Cache, *diskstore.Store) {
		clock := func() time.Time { return e.now }
		ds, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), MaxBytes: max, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New(cache.Config{Tiers: []cache.Tier{ds}, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: c, FragmentMin: 1,
			Blobs: c.Blob, Now: clock, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return f, c, ds
	}
	retained := func(h *Head) map[uint64]bool {
		s := make(map[uint64]bool)
		for _, f := range h.Files {
			if !f.Expires.IsZero() && f.Kind == rrdpxml.KindSnapshot {
				s[f.Serial] = true
			}
		}
		return s
	}
	// The cap: twice the state directory after the first snapshot, room
	// for the current state and a few serials' changed chunks.
	all, _, probe := follower(0)
	e.sync(all)
	capped, c, ds := follower(2 * probe.Used())
	e.sync(capped)
	const serials = 8
	for range serials {
		e.repo.advance()
		e.now = e.now.Add(time.Minute)
		e.sync(all)
		e.sync(capped)
		h := capped.Head()
		for i := range h.Files {
			f := &h.Files[i]
			release, ok := c.Hold(ctx, f)
			if f.Expires.IsZero() {
				if release != nil {
					release()
				}
				continue
			}
			if !ok {
				t.Fatalf("serial %d: the head names retained %s (gzip %v), which the cache no longer holds", h.Serial, f.Path, f.Gzip)
			}
			release()
		}
	}
	if ev := ds.Cap().Evictions; ev == 0 {
		t.Fatalf("the capped state directory dropped nothing in %d serials: the test needs a smaller cap", serials)
	}
	if got := len(retained(all.Head())); got != serials {
		t.Errorf("without a cap: %d serials' snapshots retained, want all %d", got, serials)
	}
	if got := len(retained(capped.Head())); got >= serials {
		t.Errorf("with the cap: %d serials' snapshots retained in the head, want fewer than %d", got, serials)
	}
}
