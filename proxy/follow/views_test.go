package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// binSnapshot returns the current .bin snapshot file of h.
func binSnapshot(t *testing.T, h *Head) *File {
	t.Helper()
	for i, fl := range h.Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Format == irpki.FormatBin && !fl.Gzip && fl.Expires.IsZero() && fl.Serial == h.Serial {
			return &h.Files[i]
		}
	}
	t.Fatalf("head of serial %d names no .bin snapshot", h.Serial)
	return nil
}

// checkViews checks that every object of objs lies within one of blobs
// (no copy), except those named in copied, and that its bytes are those
// of want.
func checkViews(t *testing.T, objs, want map[string]object, blobs [][]byte, copied map[string]bool) {
	t.Helper()
	if len(objs) != len(want) {
		t.Fatalf("got %d objects, want %d", len(objs), len(want))
	}
	type span struct{ lo, hi uintptr }
	spans := make([]span, 0, len(blobs))
	for _, b := range blobs {
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		spans = append(spans, span{lo, lo + uintptr(len(b))})
	}
	for u, o := range objs {
		w, ok := want[u]
		if !ok || o.hash != w.hash || !bytes.Equal(o.content, w.content) || sha256.Sum256(o.content) != o.hash {
			t.Fatalf("object %s: present in the want set %v, same hash %v, same bytes %v", u, ok, o.hash == w.hash, bytes.Equal(o.content, w.content))
		}
		if !copied[u] && cap(o.content) != len(o.content) {
			t.Errorf("object %s: capacity %d beyond its %d bytes: an append would write into the segment", u, cap(o.content), len(o.content))
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(o.content)))
		in := slices.ContainsFunc(spans, func(s span) bool { return s.lo <= p && p+uintptr(len(o.content)) <= s.hi })
		if in == copied[u] {
			t.Fatalf("object %s: within a stored part %v, want %v", u, in, !copied[u])
		}
	}
}

// TestRestartViews: a follower restarted from a composite head (the
// regenerating and the transparent path) rebuilds its object set from
// the stored .bin part by part: every object is a view into a stored
// segment, the bytes of the follower that stayed, and the URIs are in
// canonical order; its next serial writes the files of the follower that
// never stopped, byte for byte.
func TestRestartViews(t *testing.T) {
	for _, transparent := range []bool{false, true} {
		t.Run(fmt.Sprintf("transparent %v", transparent), func(t *testing.T) {
			e := newEnv(t)
			e.repo.count = 2000
			e.repo.reset(1)
			store := NewMemStore()
			mk := func(start *Head) *Follower {
				f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1, Transparent: transparent,
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
			e.sync(a) // serial 2 by a delta: the objects of the unchanged chunks from serial 1
			h := a.Head()
			snap := binSnapshot(t, h)
			if !snap.Composite() {
				t.Fatal("the .bin snapshot is not composite")
			}
			parts, err := cache.FileParts(context.Background(), snap, store.Get)
			if err != nil {
				t.Fatal(err)
			}
			var segs [][]byte
			for _, p := range parts {
				if p.Sum != ([32]byte{}) {
					b, _ := store.Blob(p.Sum)
					segs = append(segs, b)
				}
			}

			b := mk(h)
			st, err := b.rebuild(context.Background(), h)
			if err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			want := a.cur.objects
			a.mu.Unlock()
			checkViews(t, st.objects, want, segs, nil)
			if !slices.Equal(st.order, sortedURIs(st.objects)) {
				t.Error("the rebuilt order is not the canonical order of the objects")
			}
			if st.frags == nil || st.frags.reused == 0 {
				t.Fatal("the rebuilt state has no fragments")
			}
			// The groups (ids, sizes and pins, taken from the stored
			// file) are those of the follower that stayed.
			a.mu.Lock()
			wantGroups := a.cur.frags.groups
			a.mu.Unlock()
			if len(st.frags.groups) != len(wantGroups) {
				t.Fatalf("got %d groups, want %d", len(st.frags.groups), len(wantGroups))
			}
			for dir, g := range wantGroups {
				if st.frags.groups[dir] != g {
					t.Fatalf("group %s: got %x, want %x (id, entries, pin)", dir, st.frags.groups[dir], g)
				}
			}
			e.repo.advance()
			e.now = e.now.Add(time.Minute)
			e.sync(a)
			e.sync(b)
			checkObjects(t, b)
			if s := b.Stats(); s.Snapshots != 0 || s.StartFailures != 0 || s.FragmentsBuilt == 0 || s.FragmentsReused == 0 {
				t.Errorf("restarted follower: %d snapshots, %d start failures, chunks built %d reused %d; want 0, 0, some, some", s.Snapshots, s.StartFailures, s.FragmentsBuilt, s.FragmentsReused)
			}
			ha, hb := a.Head(), b.Head()
			if !bytes.Equal(ha.NotificationXML, hb.NotificationXML) || !bytes.Equal(ha.NotificationBin, hb.NotificationBin) {
				t.Error("the restarted follower's notifications differ from the other's")
			}
			files := func(h *Head) []string {
				var s []string
				for _, f := range h.Files {
					s = append(s, fmt.Sprintf("%s gzip=%v %x %d %x", f.Path, f.Gzip, f.Sum, f.Size, f.Index))
				}
				slices.Sort(s)
				return s
			}
			if fa, fb := files(ha), files(hb); !slices.Equal(fa, fb) {
				t.Errorf("the restarted follower's files differ:\n%v\nwant\n%v", fb, fa)
			}
		})
	}
}

// TestRestartAllocs: rebuilding the state of a composite head whose
// objects are of real sizes (0.6 to 2.5 KB, a ROA about 2 KB) allocates
// less than their contents: it neither assembles the .bin (more than the
// contents) nor copies the objects (as much as the contents); what it
// allocates is the object set's maps, URIs and hashes, and the
// fragments' lists. The code before, measured in the same run, allocates
// more than the .bin and the contents together.
func TestRestartAllocs(t *testing.T) {
	e := newEnv(t)
	e.repo.count, e.repo.size = 3000, 2500
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
		Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	h := f.Head()
	snap := binSnapshot(t, h)
	_, bs := h.Sessions()
	var content int64
	for _, o := range f.cur.objects {
		content += int64(len(o.content))
	}
	g, err := New(Config{URL: f.cfg.URL, Client: e.client, Store: store, FragmentMin: 1, Start: h, Blobs: store.Get, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	before := allocBytes(func() {
		b, err := cache.ReadFile(ctx, snap, store.Get)
		check(err)
		_, err = readSnapshot(b, irpki.FormatBin, bs, h.Serial, rrdpxml.Limits{})
		check(err)
	})
	rebuild := allocBytes(func() {
		st, err := g.rebuild(ctx, h)
		check(err)
		if err == nil && st.frags == nil {
			check(fmt.Errorf("the rebuilt state has no fragments"))
		}
	})
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	t.Logf("%d objects, %d bytes of content, a .bin of %d bytes: rebuild allocated %d bytes; the .bin assembled and its objects copied (no fragments) %d",
		len(f.cur.objects), content, snap.Size, rebuild, before)
	if rebuild >= content {
		t.Errorf("rebuild allocated %d bytes, the objects' contents are %d: want less (views, not copies)", rebuild, content)
	}
	if before < snap.Size+content {
		t.Errorf("the .bin assembled and its objects copied allocated %d bytes, want at least %d: the baseline does not measure what it should", before, snap.Size+content)
	}
}

// TestReadSnapshotViewsSplit: a composite .bin cut into parts at sizes
// unrelated to its objects (not the follower's writer, but a valid part
// list) is read all the same: the objects within one part are views, the
// ones across two are copied, and the set is the one of the file read
// whole.
func TestReadSnapshotViewsSplit(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 500
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
		Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	h := f.Head()
	snap := binSnapshot(t, h)
	ctx := context.Background()
	whole, err := cache.ReadFile(ctx, snap, store.Get)
	if err != nil {
		t.Fatal(err)
	}
	_, bs := h.Sessions()
	want, err := readSnapshot(whole, irpki.FormatBin, bs, h.Serial, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{333, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			blobs := map[[32]byte][]byte{}
			var parts []cache.Part
			var segs [][]byte
			for off := 0; off < len(whole); off += size {
				p := bytes.Clone(whole[off:min(off+size, len(whole))])
				s := sha256.Sum256(p)
				blobs[s] = p
				segs = append(segs, p)
				parts = append(parts, cache.Part{Sum: s, Size: int64(len(p))})
			}
			list := cache.EncodeParts(parts)
			ls := sha256.Sum256(list)
			blobs[ls] = list
			get := func(_ context.Context, sum [32]byte) ([]byte, error) {
				if b, ok := blobs[sum]; ok {
					return b, nil
				}
				return nil, fmt.Errorf("blob %x: %w", sum[:8], fs.ErrNotExist)
			}
			fl := *snap
			fl.Index = ls
			sv, err := readSnapshotViews(ctx, &fl, bs, h.Serial, rrdpxml.Limits{}, get)
			if err != nil {
				t.Fatal(err)
			}
			objs, order, copied := sv.objects, sv.order, sv.copied
			if sv.pins != nil {
				t.Error("pins kept for a snapshot with objects copied")
			}
			// Which objects straddle two parts: from the offsets.
			across := map[string]bool{}
			rd := irpki.NewReader(bytes.NewReader(whole), rrdpxml.KindSnapshot, rrdpxml.Limits{})
			for {
				g, err := rd.Next()
				if err != nil {
					break
				}
				for _, en := range g.Entries {
					if en.Offset/int64(size) != (en.Offset+int64(len(en.Content))-1)/int64(size) {
						across[g.Repo+en.Name] = true
					}
				}
			}
			if copied != len(across) || copied == 0 || copied == len(want) {
				t.Fatalf("copied %d objects, %d straddle two parts of %d bytes (of %d); want that many, some, not all", copied, len(across), size, len(want))
			}
			checkViews(t, objs, want, segs, across)
			if !slices.Equal(order, sortedURIs(want)) {
				t.Error("the order is not the canonical order of the objects")
			}
		})
	}
}

// TestRestartBadParts: a stored composite snapshot that does not read
// back as the head says (a segment with a byte changed, a segment of
// another size, a part missing) is not taken: the follower counts a
// start failure and takes the origin's snapshot, and the error says why.
func TestRestartBadParts(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 2000
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
		Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	h := f.Head()
	parts, err := cache.FileParts(context.Background(), binSnapshot(t, h), store.Get)
	if err != nil {
		t.Fatal(err)
	}
	// A segment in the middle, and an object's first byte within it.
	vi := len(parts) / 2
	victim := parts[vi].Sum
	var vstart int64
	for _, p := range parts[:vi] {
		vstart += p.Size
	}
	flip := int64(-1)
	whole, err := cache.ReadFile(context.Background(), binSnapshot(t, h), store.Get)
	if err != nil {
		t.Fatal(err)
	}
	rd := irpki.NewReader(bytes.NewReader(whole), rrdpxml.KindSnapshot, rrdpxml.Limits{})
	for flip < 0 {
		g, err := rd.Next()
		if err != nil {
			t.Fatalf("no object within part %d: %v", vi, err)
		}
		for _, en := range g.Entries {
			if en.Offset >= vstart && en.Offset < vstart+parts[vi].Size {
				flip = en.Offset - vstart
				break
			}
		}
	}
	for _, c := range []struct {
		name string
		edit func([]byte) ([]byte, error)
		want error
	}{
		{"byte changed", func(b []byte) ([]byte, error) { b = bytes.Clone(b); b[flip] ^= 1; return b, nil }, irpki.ErrPin},
		{"shorter", func(b []byte) ([]byte, error) { return b[:len(b)-1], nil }, cache.ErrParts},
		{"missing", func([]byte) ([]byte, error) { return nil, fs.ErrNotExist }, fs.ErrNotExist},
	} {
		t.Run(c.name, func(t *testing.T) {
			get := func(ctx context.Context, sum [32]byte) ([]byte, error) {
				b, err := store.Get(ctx, sum)
				if err == nil && sum == victim {
					return c.edit(b)
				}
				return b, err
			}
			g, err := New(Config{URL: f.cfg.URL, Client: e.client, Store: store, FragmentMin: 1, Start: h, Blobs: get,
				Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := g.rebuild(context.Background(), h); !errors.Is(err, c.want) {
				t.Fatalf("rebuild: got %v, want %v", err, c.want)
			}
			e.sync(g)
			if s := g.Stats(); s.StartFailures != 1 || s.Snapshots != 1 {
				t.Errorf("got %d start failures, %d snapshots; want 1, 1", s.StartFailures, s.Snapshots)
			}
			checkState(t, g, e.repo)
		})
	}
}

// allocBytes returns the bytes fn allocates on the heap.
func allocBytes(fn func()) int64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc - before.TotalAlloc)
}

// TestResumePlaced: resume takes over a chunk only if each object's bytes
// are those at its place in the chunk's .bin segment: an object that is
// a view there is taken as it is, a copy with the same bytes is moved
// there (Realias), and one with other bytes of the same size (a snapshot
// whose segments have the right sizes but another order) fails the
// resume, so that the next serial builds every chunk. With the pins the
// reader checked (sv), every object must be a view in place: a copy
// fails the resume too, since nothing then shows that the bytes under
// the pins are the groups' canonical encoding.
func TestResumePlaced(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 2000
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
		Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	h := f.Head()
	xs, bs := h.Sessions()
	var snap [4]*File
	for i, fl := range h.Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Expires.IsZero() {
			j := 0
			if fl.Format == irpki.FormatBin {
				j = 1
			}
			if fl.Gzip {
				j += 2
			}
			snap[j] = &h.Files[i]
		}
	}
	ctx := context.Background()
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }
	for _, c := range []struct {
		name    string
		edit    func([]byte) []byte
		pins    bool
		moved   int
		wantErr bool
	}{
		{"views, pins", nil, true, 0, false},
		{"views", nil, false, 0, false},
		{"a copy", bytes.Clone, false, 1, false},
		{"a copy, pins", bytes.Clone, true, 0, true},
		{"other bytes", flip, false, 0, true},
		{"other bytes, pins", flip, true, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sv, err := readSnapshotViews(ctx, snap[1], bs, h.Serial, rrdpxml.Limits{}, store.Get)
			if err != nil {
				t.Fatal(err)
			}
			if sv.pins == nil {
				t.Fatal("no pins kept for the follower's own snapshot")
			}
			objs, order := sv.objects, sv.order
			if c.edit != nil {
				u := order[len(order)/2]
				o := objs[u]
				o.content = c.edit(o.content)
				o.hash = sha256.Sum256(o.content)
				objs[u] = o
			}
			if !c.pins {
				sv = nil
			}
			fr, err := resume(ctx, order, func(u string) object { return objs[u] }, xs, bs, snap, store.Get, false, sv)
			if c.wantErr {
				if err == nil {
					t.Fatal("resume took a chunk whose objects are not in place")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fr.realias) != c.moved {
				t.Errorf("got %d objects to move to their segments, want %d", len(fr.realias), c.moved)
			}
			f.mu.Lock()
			want := f.cur.frags.groups
			f.mu.Unlock()
			if len(fr.groups) != len(want) {
				t.Fatalf("got %d groups, want %d", len(fr.groups), len(want))
			}
			for dir, g := range want {
				if fr.groups[dir] != g {
					t.Fatalf("group %s: got %x, want %x (id, entries, pin)", dir, fr.groups[dir], g)
				}
			}
		})
	}
}

// TestResumeTakesPins: with the objects in place, resume takes the
// groups' pins from the reader (no second SHA-256 pass over every
// object): a pin changed in what the reader reported is the one resumed.
// (The reader checked the real ones against the bytes; this only shows
// which source resume uses.)
func TestResumeTakesPins(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 500
	e.repo.reset(1)
	store := NewMemStore()
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: store, FragmentMin: 1,
		Now: func() time.Time { return e.now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	h := f.Head()
	xs, bs := h.Sessions()
	snap := [4]*File{}
	for i, fl := range h.Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Expires.IsZero() {
			j := 0
			if fl.Format == irpki.FormatBin {
				j = 1
			}
			if fl.Gzip {
				j += 2
			}
			snap[j] = &h.Files[i]
		}
	}
	ctx := context.Background()
	sv, err := readSnapshotViews(ctx, snap[1], bs, h.Serial, rrdpxml.Limits{}, store.Get)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	for d := range sv.pins {
		dir = d
		break
	}
	marked := sv.pins[dir]
	marked[0] ^= 0xff
	sv.pins[dir] = marked
	fr, err := resume(ctx, sv.order, func(u string) object { return sv.objects[u] }, xs, bs, snap, store.Get, false, sv)
	if err != nil {
		t.Fatal(err)
	}
	if fr.groups[dir].pin != marked {
		t.Errorf("group %s: resume computed its pin again instead of taking the reader's", dir)
	}
}
