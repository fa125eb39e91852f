package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// snapshotFile returns the current snapshot file of h of format and gzip.
func snapshotFile(t *testing.T, h *Head, format irpki.Format, gzip bool) File {
	t.Helper()
	for _, fl := range h.Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Format == format && fl.Gzip == gzip && fl.Expires.IsZero() && fl.Serial == h.Serial {
			return fl
		}
	}
	t.Fatalf("head of serial %d has no current %v snapshot (gzip %v)", h.Serial, format, gzip)
	return File{}
}

// TestTransparentBin: the .bin snapshot a transparent follower serves is
// the one a regenerating follower serves for the same objects, whole or
// composite (FragmentMin), although the origin lists its objects in
// another order at every serial (DESIGN.md, invariant 8): it is made from
// the objects, not transcoded from the origin's XML.
func TestTransparentBin(t *testing.T) {
	for _, fragMin := range []int64{-1, 1} {
		t.Run(fmt.Sprintf("FragmentMin %d", fragMin), func(t *testing.T) {
			e := newEnv(t)
			e.repo.count = 1500 // several chunks when composite
			e.repo.reset(1)
			tf := e.transparentWith("transparent", nil, fragMin)
			rf, err := New(Config{URL: e.repo.base + "notification.xml", Repo: "regenerating", Client: e.client, Store: e.store,
				FragmentMin: fragMin, Now: func() time.Time { return e.now }, Logger: slog.New(slog.NewTextHandler(e.log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			for serial := range 4 {
				if serial > 0 {
					e.repo.advance()
				}
				e.sync(tf)
				e.sync(rf)
				checkOrigin(t, e, tf)
				th, rh := tf.Head(), rf.Head()
				for _, gz := range []bool{false, true} {
					tb, rb := snapshotFile(t, th, irpki.FormatBin, gz), snapshotFile(t, rh, irpki.FormatBin, gz)
					if tb.Composite() != (fragMin > 0) {
						t.Fatalf("serial %d: .bin composite %v with FragmentMin %d", th.Serial, tb.Composite(), fragMin)
					}
					if tb.Path != rb.Path || !bytes.Equal(readFile(t, e.store, tb), readFile(t, e.store, rb)) {
						t.Fatalf("serial %d (gzip %v): the transparent .bin %s differs from the regenerated %s", th.Serial, gz, tb.Path, rb.Path)
					}
				}
			}
			if s := tf.Stats(); s.Snapshots != 1 || s.Deltas != 3 || s.SnapshotMismatches != 0 {
				t.Errorf("got %d snapshots, %d deltas, %d mismatches; want 1, 3, 0", s.Snapshots, s.Deltas, s.SnapshotMismatches)
			}
		})
	}
}

// TestTransparentSegments: the origin's snapshot of a composite
// transparent follower is stored as segments of its bytes that the next
// serial reuses where the origin's bytes did not change, before and after
// a restart from the stored head; the bytes served are the origin's.
func TestTransparentSegments(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 3000
	e.repo.sorted = true // an origin that writes its objects in a stable order
	e.repo.reset(1)
	f := e.transparentWith("t", nil, 1)
	e.sync(f)
	checkOrigin(t, e, f)
	if x := snapshotFile(t, f.Head(), irpki.FormatXML, false); !x.Composite() {
		t.Fatal("the origin's snapshot is not stored as segments")
	}
	first := f.Stats()
	if first.OriginSegmentsBuilt < 10 || first.OriginSegmentsReused != 0 {
		t.Fatalf("first serial: %d segments stored, %d reused; want 10 or more, 0", first.OriginSegmentsBuilt, first.OriginSegmentsReused)
	}
	check := func(f *Follower, before Stats) {
		t.Helper()
		s := f.Stats()
		built, reused := s.OriginSegmentsBuilt-before.OriginSegmentsBuilt, s.OriginSegmentsReused-before.OriginSegmentsReused
		// A serial changes 11 objects and the start tag (its serial).
		if built > 12 || reused < first.OriginSegmentsBuilt/3 {
			t.Errorf("serial %d: %d segments stored, %d reused; want at most 12 stored of %d", f.Head().Serial, built, reused, first.OriginSegmentsBuilt)
		}
		if s.FragmentsReused == before.FragmentsReused {
			t.Errorf("serial %d: no .bin chunk reused", f.Head().Serial)
		}
	}
	for range 3 {
		before := f.Stats()
		e.repo.advance()
		e.sync(f)
		checkOrigin(t, e, f)
		check(f, before)
	}
	g := e.transparentWith("t", f.Head(), 1)
	e.repo.advance()
	e.sync(g)
	checkOrigin(t, e, g)
	if s := g.Stats(); s.StartFailures != 0 || s.Snapshots != 0 {
		t.Fatalf("restarted: %d start failures, %d snapshots; want 0, 0", s.StartFailures, s.Snapshots)
	}
	check(g, Stats{})
}

// TestTransparentBadSnapshot: an origin's snapshot that matches the hash
// its notification names but is broken (truncated, or of another serial)
// fails the sync after the deltas applied, by the delta path and by the
// snapshot path, whole or stored as segments, and the good state stays
// served; once the origin heals, the follower goes on from it.
func TestTransparentBadSnapshot(t *testing.T) {
	for _, fragMin := range []int64{-1, 1} {
		for _, tc := range []struct {
			name  string
			spoil func(b []byte, serial uint64) []byte
		}{
			{"truncated", func(b []byte, _ uint64) []byte { return b[:len(b)/2] }},
			{"another serial", func(b []byte, serial uint64) []byte {
				return bytes.Replace(b, fmt.Appendf(nil, `serial="%d"`, serial), fmt.Appendf(nil, `serial="%d"`, serial-1), 1)
			}},
		} {
			t.Run(fmt.Sprintf("%s, FragmentMin %d", tc.name, fragMin), func(t *testing.T) {
				e := newEnv(t)
				e.repo.count = 1500
				e.repo.sorted = true
				e.repo.reset(1)
				f := e.transparentWith("t", nil, fragMin)
				e.sync(f)
				e.repo.advance()
				e.sync(f)
				good := f.Head()

				e.repo.advance()
				rel := strings.TrimPrefix(e.repo.snap.URI, e.repo.base)
				p := filepath.Join(e.repo.dir, "rrdp", filepath.FromSlash(rel))
				orig := e.originFile(rel)
				bad := tc.spoil(orig, e.repo.serial)
				if err := os.WriteFile(p, bad, 0o644); err != nil {
					t.Fatal(err)
				}
				x, b := e.repo.notification(false), e.repo.notification(true)
				x.Snapshot.Hash = sha256.Sum256(bad)
				e.repo.writeNotifications(x, b)

				if _, err := f.Sync(context.Background()); err == nil {
					t.Fatal("a broken snapshot: the sync succeeded")
				}
				if f.Head() != good || e.store.Head("t") != good {
					t.Fatal("a broken snapshot replaced the good state")
				}
				if s := f.Stats(); s.Errors != 1 || s.Serial != good.Serial || s.Snapshots != 1 {
					t.Errorf("got %d errors at serial %d, %d snapshots; want 1 at %d, 1", s.Errors, s.Serial, s.Snapshots, good.Serial)
				}
				fresh := e.transparentWith("fresh", nil, fragMin)
				if _, err := fresh.Sync(context.Background()); err == nil {
					t.Error("a broken snapshot: the first sync of a fresh follower succeeded")
				}
				if h := e.store.Head("fresh"); h != nil {
					t.Errorf("a broken snapshot: a fresh follower published serial %d", h.Serial)
				}

				if err := os.WriteFile(p, orig, 0o644); err != nil {
					t.Fatal(err)
				}
				e.repo.writeNotification()
				e.sync(f)
				checkOrigin(t, e, f)
				e.repo.advance()
				e.sync(f)
				checkOrigin(t, e, f)
				if s := f.Stats(); s.Snapshots != 1 || s.Deltas != 3 || s.SnapshotMismatches != 0 {
					t.Errorf("healed: %d snapshots, %d deltas, %d mismatches; want 1, 3, 0", s.Snapshots, s.Deltas, s.SnapshotMismatches)
				}
			})
		}
	}
}

// TestTransparentSnapshotLacks: an origin's snapshot that lacks an object
// of the state its deltas lead to (or holds it with other bytes) is a
// mismatch, found while the snapshot is decoded without remembering its
// URIs; the snapshot's state is taken and the objects named in the log.
func TestTransparentSnapshotLacks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(objs map[string][]byte, uri string)
	}{
		{"lacks an object", func(objs map[string][]byte, uri string) { delete(objs, uri) }},
		{"other bytes", func(objs map[string][]byte, uri string) { objs[uri] = []byte("not what the deltas say") }},
		{"one byte other, same length", func(objs map[string][]byte, uri string) {
			c := bytes.Clone(objs[uri])
			c[len(c)/2] ^= 1
			objs[uri] = c
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.transparentWith("", nil, 1)
			e.sync(f)
			e.repo.advance()
			uri := e.repo.sortedURIs()[7]
			tc.spoil(e.repo.objs, uri)
			e.repo.writeSnapshot()
			e.repo.writeNotification()
			e.sync(f)
			checkOrigin(t, e, f)
			if s := f.Stats(); s.SnapshotMismatches != 1 || s.Resets != 1 {
				t.Errorf("got %d mismatches, %d resets; want 1, 1", s.SnapshotMismatches, s.Resets)
			}
			if !strings.Contains(e.log.String(), uri) {
				t.Errorf("the log does not name %s:\n%s", uri, e.log.String())
			}
		})
	}
}

// TestOriginSegmenter: the segments of a snapshot join to its bytes and
// fall at the same places however the reads cut it (one byte at a time
// here: tags split across reads); the same bytes again reuse every
// segment but none that changed; a body with no tag the scan knows is cut
// at originMax.
func TestOriginSegmenter(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="s" serial="1">` + "\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "  <publish uri=\"rsync://h/r/%d.roa\">%s</publish>\n  <publisher/>\n", i, strings.Repeat("QUJD", 1+i%50))
	}
	b.WriteString("</snapshot>\n")
	in := b.Bytes()
	run := func(r io.Reader, prev *originSegs) (*originSegmenter, []byte) {
		t.Helper()
		s, err := newOriginSegmenter(prev, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.fill(r); err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, p := range s.parts {
			if p.Data != nil {
				out = append(out, p.Data...)
				continue
			}
			var found bool
			for _, sg := range s.next.segs {
				if sg.plain.sum == p.Sum {
					out, found = append(out, sg.plain.b...), true
					break
				}
			}
			if !found {
				t.Fatalf("part %x is no segment", p.Sum[:4])
			}
		}
		return s, out
	}
	whole, out := run(bytes.NewReader(in), nil)
	if !bytes.Equal(out, in) || whole.size != int64(len(in)) {
		t.Fatalf("the segments join to %d bytes, not the %d of the input", len(out), len(in))
	}
	if len(whole.parts) < 10 || whole.reused != 0 {
		t.Fatalf("%d segments, %d reused; want 10 or more, none reused", len(whole.parts), whole.reused)
	}
	bytewise, _ := run(iotest.OneByteReader(bytes.NewReader(in)), nil)
	if !slices.EqualFunc(bytewise.parts, whole.parts, func(a, b cache.Part) bool { return a.Sum == b.Sum && a.Size == b.Size && bytes.Equal(a.Data, b.Data) }) {
		t.Fatal("read a byte at a time, the snapshot is cut elsewhere")
	}
	again, _ := run(bytes.NewReader(in), whole.next)
	if again.built != 0 || again.reused != len(whole.parts) {
		t.Errorf("the same bytes again: %d built, %d reused; want 0, %d", again.built, again.reused, len(whole.parts))
	}
	changed := bytes.Replace(in, []byte("rsync://h/r/1500.roa\">QUJD"), []byte("rsync://h/r/1500.roa\">QUJE"), 1)
	one, out := run(bytes.NewReader(changed), whole.next)
	if !bytes.Equal(out, changed) || one.built != 1 || one.reused != len(whole.parts)-1 {
		t.Errorf("one object changed: %d built, %d reused of %d", one.built, one.reused, len(whole.parts))
	}
	// A tag that starts just before originMax, read in pieces that end
	// inside it: cut at the tag, as when read whole (before, the forced
	// cut at originMax won when the read ended before the tag's '>').
	var near bytes.Buffer
	near.WriteString(`<snapshot serial="1">`)
	near.WriteString(strings.Repeat("x", originMax-10-near.Len()))
	var tag string
	for i := 0; ; i++ {
		if tag = fmt.Sprintf(`<publish uri="rsync://h/r/%d.roa">`, i); cutsAt([]byte(tag)) {
			break
		}
	}
	near.WriteString(tag + "QUJD</publish></snapshot>")
	wholeNear, out := run(bytes.NewReader(near.Bytes()), nil)
	if !bytes.Equal(out, near.Bytes()) {
		t.Fatal("near originMax: the segments do not join to the input")
	}
	for _, r := range []io.Reader{
		iotest.OneByteReader(bytes.NewReader(near.Bytes())),
		iotest.HalfReader(bytes.NewReader(near.Bytes())),
		io.MultiReader(bytes.NewReader(near.Bytes()[:originMax+5]), bytes.NewReader(near.Bytes()[originMax+5:])),
	} {
		got, _ := run(r, nil)
		if !slices.EqualFunc(got.parts, wholeNear.parts, func(a, b cache.Part) bool { return a.Sum == b.Sum && a.Size == b.Size && bytes.Equal(a.Data, b.Data) }) {
			sizes := func(ps []cache.Part) (z []int64) {
				for _, p := range ps {
					z = append(z, p.Size)
				}
				return z
			}
			t.Errorf("a tag across originMax, read in pieces: segments %v, read whole %v", sizes(got.parts), sizes(wholeNear.parts))
		}
	}
	plain := bytes.Repeat([]byte("x"), 2*originMax+10)
	s, out := run(bytes.NewReader(plain), nil)
	if !bytes.Equal(out, plain) || len(s.parts) != 3 {
		t.Errorf("no tags: %d segments, want 3", len(s.parts))
	}
}
