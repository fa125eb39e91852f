package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// change publishes a new serial whose delta changes one object: replaces
// u by c, adds it if u is new, withdraws it if c is nil; then the
// snapshot and the notification.
func (r *testRepo) change(u string, c []byte) {
	r.serial++
	var buf bytes.Buffer
	w, err := rrdpxml.NewWriter(&buf, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: r.session, Serial: r.serial})
	if err != nil {
		r.t.Fatal(err)
	}
	old, had := r.objs[u]
	h := sha256.Sum256(old)
	switch {
	case c == nil:
		err = w.Withdraw(u, h)
		delete(r.objs, u)
	case had:
		err = w.Publish(u, &h, c)
		r.objs[u] = c
	default:
		err = w.Publish(u, nil, c)
		r.objs[u] = c
	}
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		r.t.Fatal(err)
	}
	xu, xh, bu, bh := r.put("delta", buf.Bytes())
	r.deltas = append(r.deltas, rrdpxml.DeltaRef{Serial: r.serial, URI: xu, Hash: xh})
	r.binDeltas = append(r.binDeltas, rrdpxml.DeltaRef{Serial: r.serial, URI: bu, Hash: bh})
	r.writeSnapshot()
	r.writeNotification()
}

// serveSnapshot makes the origin serve b as the snapshot of its current
// serial, its hash in the notification, and takes b's objects as the
// origin's (what a follower that takes the snapshot holds).
func (e *env) serveSnapshot(b []byte) {
	e.t.Helper()
	rel := strings.TrimPrefix(e.repo.snap.URI, e.repo.base)
	e.repo.write(rel, b)
	e.repo.snap.Hash = sha256.Sum256(b)
	e.repo.writeNotification()
	objs, err := readSnapshot(b, irpki.FormatXML, e.repo.session, e.repo.serial, rrdpxml.Limits{})
	if err != nil {
		return // a snapshot the follower must refuse
	}
	e.repo.objs = map[string][]byte{}
	for u, o := range objs {
		e.repo.objs[u] = o.content
	}
}

// snapshotBytes returns the origin's current XML snapshot.
func (e *env) snapshotBytes() []byte {
	e.t.Helper()
	return e.originFile(filepath.ToSlash(strings.TrimPrefix(e.repo.snap.URI, e.repo.base)))
}

var knownLine = regexp.MustCompile(`msg="applied deltas and took the origin's snapshot".* decoded=(\d+) known=(\d+)`)

// decodedKnown returns, from the log of the last transparent delta sync,
// the snapshot elements whose content was decoded and those whose
// content was known from the previous serial.
func decodedKnown(t *testing.T, e *env) (int, int) {
	t.Helper()
	m := knownLine.FindAllStringSubmatch(e.log.String(), -1)
	if len(m) == 0 {
		t.Fatal("no transparent delta sync in the log")
	}
	d, _ := strconv.Atoi(m[len(m)-1][1])
	k, _ := strconv.Atoi(m[len(m)-1][2])
	return d, k
}

// segmentStarts returns the offsets at which the origin's segmenter cuts
// b, and b's length last.
func segmentStarts(t *testing.T, b []byte) []int {
	t.Helper()
	s, err := newOriginSegmenter(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.fill(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	at, out := 0, []int{0}
	for _, p := range s.parts {
		at += int(p.Size)
		out = append(out, at)
	}
	return out
}

// segmentOf returns the index of the segment of starts holding offset at.
func segmentOf(starts []int, at int) int {
	for i := 1; i < len(starts); i++ {
		if at < starts[i] {
			return i - 1
		}
	}
	return -1
}

// TestTransparentKnownSegments: the check of the origin's snapshot
// against the deltas' state decodes the contents of new segments only,
// taking those of the elements found where the previous serial had them,
// in segments of the same bytes, as known; and yet an origin whose
// snapshot differs from the deltas' state is found out as when every
// object was decoded, wherever the difference hides: an object the
// deltas changed, withdrew or added and the origin left as it was in an
// unchanged segment, one byte changed in a segment that starts and ends
// like the previous serial's, an object published twice (once in an
// unchanged segment), elements of an unchanged segment put inside a
// comment. Segments moved whole are the same objects, and pass.
func TestTransparentKnownSegments(t *testing.T) {
	type result int
	const (
		passes result = iota
		mismatch
		refused
	)
	for _, tc := range []struct {
		name string
		// change is the delta, spoil the snapshot served from the
		// previous serial's bytes, the current serial's, and the offsets
		// of the elements of u and of w (an object the delta keeps, in
		// another segment, not the first of its segment), with the
		// segments of now.
		change func(r *testRepo, u string)
		spoil  func(t *testing.T, prev, now []byte, at map[string]int, starts []int) []byte
		want   result
		named  string // "u", "w": the object the log must name
	}{
		{"honest", replace, nil, passes, ""},
		{"replaced, the old bytes left in an unchanged segment", replace, relabel, mismatch, "u"},
		{"withdrawn, left in an unchanged segment", func(r *testRepo, u string) { r.change(u, nil) }, relabel, mismatch, "u"},
		{"added, missing", func(r *testRepo, _ string) {
			r.change("rsync://rpki.example.net/repo/z/added.roa", []byte("new object"))
		}, relabel, mismatch, ""},
		{"one byte changed, the segment's size and start unchanged", replace, func(t *testing.T, prev, now []byte, at map[string]int, starts []int) []byte {
			b := bytes.Clone(now)
			i := at["w"] + bytes.IndexByte(now[at["w"]:], '>') + 8 // inside its base64
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return b
		}, mismatch, "w"},
		{"an object twice, in a new and an unchanged segment", replace, func(t *testing.T, prev, now []byte, at map[string]int, starts []int) []byte {
			w := publishAt(now, at["w"])
			var b []byte
			b = append(b, now[:at["u"]]...)
			b = append(b, w...)
			return append(b, now[at["u"]:]...)
		}, refused, ""},
		{"an unchanged segment inside a comment", replace, func(t *testing.T, prev, now []byte, at map[string]int, starts []int) []byte {
			k := segmentOf(starts, at["w"])
			var b []byte
			b = append(b, now[:starts[k]]...)
			// The comment ends with the segment after (then new): this
			// one keeps its bytes.
			b = append(b, "<!--"...)
			b = append(b, now[starts[k]:starts[k+2]]...)
			b = append(b, "-->"...)
			return append(b, now[starts[k+2]:]...)
		}, mismatch, ""},
		{"two unchanged segments swapped", replace, func(t *testing.T, prev, now []byte, at map[string]int, starts []int) []byte {
			k := segmentOf(starts, at["w"])
			var b []byte
			b = append(b, now[:starts[k]]...)
			b = append(b, now[starts[k+1]:starts[k+2]]...)
			b = append(b, now[starts[k]:starts[k+1]]...)
			return append(b, now[starts[k+2]:]...)
		}, passes, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.repo.count = 3000
			e.repo.sorted = true
			e.repo.reset(1)
			f := e.transparentWith("t", nil, 1)
			e.sync(f)
			uris := e.repo.sortedURIs()
			u := uris[2000]
			// The first delta sync has the offsets of the snapshot path.
			e.repo.change(uris[100], []byte("the first change"))
			e.sync(f)
			checkOrigin(t, e, f)
			if d, k := decodedKnown(t, e); k < 2500 || d > 500 {
				t.Fatalf("after the snapshot: %d contents decoded, %d known; want most known", d, k)
			}
			good := f.Head()
			prev := e.snapshotBytes()

			tc.change(e.repo, u)
			now := e.snapshotBytes()
			starts := segmentStarts(t, now)
			at := map[string]int{"u": bytes.Index(now, []byte(`<publish uri="`+u+`"`))}
			if at["u"] < 0 { // withdrawn: where it was
				at["u"] = bytes.Index(prev, []byte(`<publish uri="`+u+`"`))
			}
			for _, w := range uris[500:] {
				i := bytes.Index(now, []byte(`<publish uri="`+w+`"`))
				k := segmentOf(starts, i)
				// Far enough into its segment for the segment's key
				// (segKey: its first 256 bytes) not to hold it.
				if k > 0 && k+2 < len(starts)-1 && i-starts[k] > 300 && starts[k+2] < at["u"] {
					at["w"] = i
					if tc.named == "w" {
						tc.named = w
					}
					break
				}
			}
			if at["u"] < 0 || at["w"] == 0 {
				t.Fatal("no object to spoil the snapshot with")
			}
			if tc.named == "u" {
				tc.named = u
			}
			if tc.spoil != nil {
				e.serveSnapshot(tc.spoil(t, prev, now, at, starts))
			}
			if tc.want == refused {
				_, err := f.Sync(context.Background())
				if !errors.Is(err, rrdpxml.ErrDuplicateURI) {
					t.Fatalf("got %v, want %v", err, rrdpxml.ErrDuplicateURI)
				}
				if f.Head() != good {
					t.Fatal("a refused snapshot replaced the good state")
				}
				return
			}
			e.sync(f)
			checkOrigin(t, e, f) // the deltas' state, or the snapshot's
			d, k := decodedKnown(t, e)
			if k < 2500 || d > 500 {
				t.Errorf("%d contents decoded, %d known; want most known", d, k)
			}
			s := f.Stats()
			if got := s.SnapshotMismatches; got != map[result]uint64{passes: 0, mismatch: 1}[tc.want] {
				t.Errorf("got %d mismatches, want %d", got, map[result]uint64{passes: 0, mismatch: 1}[tc.want])
			}
			if tc.named != "" && !strings.Contains(e.log.String(), tc.named) {
				t.Errorf("the log does not name %s:\n%s", tc.named, e.log.String())
			}
			// The serial after goes on from there, its check known too.
			e.repo.change(uris[2500], []byte("the last change"))
			e.sync(f)
			checkOrigin(t, e, f)
			if d, k := decodedKnown(t, e); k < 2500 || d > 500 {
				t.Errorf("next serial: %d contents decoded, %d known; want most known", d, k)
			}
		})
	}
}

func replace(r *testRepo, u string) { r.change(u, []byte("what the delta says")) }

// relabel is the previous serial's snapshot given the current serial.
func relabel(t *testing.T, prev, now []byte, _ map[string]int, _ []int) []byte {
	t.Helper()
	i := bytes.Index(now, []byte(`serial="`))
	j := i + bytes.IndexByte(now[i+len(`serial="`):], '"') + len(`serial="`) + 1
	p := bytes.Index(prev, []byte(`serial="`))
	q := p + bytes.IndexByte(prev[p+len(`serial="`):], '"') + len(`serial="`) + 1
	if i < 0 || p < 0 {
		t.Fatal("no serial in the snapshot")
	}
	return fmt.Appendf(nil, "%s%s%s", prev[:p], now[i:j], prev[q:])
}

// publishAt returns the publish element of b at offset i.
func publishAt(b []byte, i int) []byte {
	end := bytes.Index(b[i:], []byte("</publish>"))
	return b[i : i+end+len("</publish>")]
}

// TestTransparentKnownOffsets: a segment of the previous serial's bytes
// whose elements that serial did not decode where they are (it hid them
// in a comment, and published the same URIs elsewhere with other bytes,
// which became the state) has its elements decoded when they show again:
// their contents are not the state's, and the snapshot that shows them is
// a mismatch. Known contents come from where the previous serial's
// decoder found elements, not from segments' bytes alone.
func TestTransparentKnownOffsets(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 3000
	e.repo.sorted = true
	e.repo.reset(1)
	f := e.transparentWith("t", nil, 1)
	e.sync(f)
	uris := e.repo.sortedURIs()
	e.repo.change(uris[100], []byte("the first change"))
	e.sync(f)

	// Serial N: segment k in a comment (with k+1, the comment's end; k
	// keeps its bytes), its URIs published with other bytes after
	// uris[2000].
	replace(e.repo, uris[2000])
	s0 := e.snapshotBytes()
	starts := segmentStarts(t, s0)
	k := segmentOf(starts, bytes.Index(s0, []byte(`<publish uri="`+uris[1000]+`"`)))
	seg := s0[starts[k]:starts[k+1]]
	var hidden []string
	var other bytes.Buffer
	for i := 0; ; {
		j := bytes.Index(seg[i:], []byte(`<publish uri="`))
		if j < 0 {
			break
		}
		i += j + len(`<publish uri="`)
		u := string(seg[i : i+bytes.IndexByte(seg[i:], '"')])
		hidden = append(hidden, u)
		fmt.Fprintf(&other, "<publish uri=%q>b3RoZXI=</publish>\n", u) // "other"
	}
	if len(hidden) < 10 {
		t.Fatalf("segment %d holds %d objects", k, len(hidden))
	}
	at := bytes.Index(s0, []byte(`<publish uri="`+uris[2001]+`"`))
	if at < starts[k+2] {
		t.Fatal("uris[2001] is not after the comment")
	}
	var b []byte
	b = append(b, s0[:starts[k]]...)
	b = append(b, "<!--"...)
	b = append(b, s0[starts[k]:starts[k+2]]...)
	b = append(b, "-->"...)
	b = append(b, s0[starts[k+2]:at]...)
	b = append(b, other.Bytes()...)
	b = append(b, s0[at:]...)
	e.serveSnapshot(b)
	e.sync(f)
	checkOrigin(t, e, f)
	if s := f.Stats(); s.SnapshotMismatches != 1 {
		t.Fatalf("serial %d: %d mismatches, want 1", e.repo.serial, s.SnapshotMismatches)
	}

	// Serial N+1: the honest snapshot of the deltas' state (the hidden
	// URIs with the other bytes), but segment k as it was: the old bytes.
	e.repo.change(uris[2500], []byte("the last change"))
	honest := e.snapshotBytes()
	first := bytes.Index(honest, []byte(`<publish uri="`+hidden[0]+`"`))
	last := bytes.Index(honest, []byte(`<publish uri="`+hidden[len(hidden)-1]+`"`))
	last += len(publishAt(honest, last))
	for last < len(honest) && honest[last] != '<' {
		last++ // the whitespace after it, as in seg
	}
	b = append(append(append([]byte(nil), honest[:first]...), seg...), honest[last:]...)
	e.serveSnapshot(b)
	if !bytes.Contains(b, seg) || segmentOf(segmentStarts(t, b), bytes.Index(b, seg)) < 0 {
		t.Fatal("segment k is not in the snapshot")
	}
	e.sync(f)
	checkOrigin(t, e, f)
	if s := f.Stats(); s.SnapshotMismatches != 2 {
		t.Errorf("serial %d: %d mismatches, want 2: the old bytes of segment %d passed", e.repo.serial, s.SnapshotMismatches, k)
	}
	if d, _ := decodedKnown(t, e); d < len(hidden) {
		t.Errorf("%d contents decoded, want at least the %d of segment %d", d, len(hidden), k)
	}
}

// TestTransparentKnownRestart: a node restarted from its stored head has
// the segments but not where their elements are: its first serial
// decodes every content (and is checked as before), the one after knows
// them again; a snapshot stored whole (FragmentMin -1) has no segments,
// and every serial decodes every content.
func TestTransparentKnownRestart(t *testing.T) {
	e := newEnv(t)
	e.repo.count = 3000
	e.repo.sorted = true
	e.repo.reset(1)
	f := e.transparentWith("t", nil, 1)
	whole := e.transparentWith("whole", nil, -1)
	e.sync(f)
	e.sync(whole)
	uris := e.repo.sortedURIs()
	mostKnown := func(what string) {
		t.Helper()
		if d, k := decodedKnown(t, e); k < 2500 || d > 500 {
			t.Errorf("%s: %d contents decoded, %d known; want most known", what, d, k)
		}
	}
	allDecoded := func(what string) {
		t.Helper()
		if d, k := decodedKnown(t, e); k != 0 || d != len(e.repo.objs) {
			t.Errorf("%s: %d contents decoded, %d known; want all %d decoded", what, d, k, len(e.repo.objs))
		}
	}
	for serial := range 2 {
		e.repo.change(uris[100+serial], []byte("a change"))
		e.sync(f)
		checkOrigin(t, e, f)
		mostKnown("segments")
		e.sync(whole)
		checkOrigin(t, e, whole)
		allDecoded("stored whole")
	}
	g := e.transparentWith("t", f.Head(), 1)
	e.repo.change(uris[300], []byte("after the restart"))
	e.sync(g)
	checkOrigin(t, e, g)
	allDecoded("restarted")
	e.repo.change(uris[400], []byte("the serial after"))
	e.sync(g)
	checkOrigin(t, e, g)
	mostKnown("the serial after the restart")
}
