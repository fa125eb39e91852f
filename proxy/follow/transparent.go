package follow

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// transparent reports whether the follower serves an origin of format f
// as it is (Config.Transparent).
func (f *Follower) transparent(format irpki.Format) bool {
	return f.cfg.Transparent && format == irpki.FormatXML
}

// checkTransparent returns the path of the directory of URL, ending in
// '/'. In transparent mode the files are served at their paths under
// Base, so Base's path must be that directory; a Base on another host
// than URL is allowed but logged: relying parties then fetch the files
// where the origin's notification names them.
func (f *Follower) checkTransparent() (string, error) {
	u, err := url.Parse(f.cfg.URL)
	if err != nil {
		return "", fmt.Errorf("follow: notification URL %q: %w", f.cfg.URL, err)
	}
	dir := u.Path[:strings.LastIndexByte(u.Path, '/')+1]
	if dir == "" {
		dir = "/"
	}
	if !f.cfg.Transparent {
		return dir, nil
	}
	b, err := url.Parse(f.cfg.Base)
	if err != nil {
		return "", fmt.Errorf("follow: base %q: %w", f.cfg.Base, err)
	}
	if b.Path != dir {
		return "", fmt.Errorf("follow: transparent: base %s serves the path %s, not %s, the directory of the origin's notification %s: the origin's files could not be served at their own paths", f.cfg.Base, b.Path, dir, f.cfg.URL)
	}
	return dir, nil
}

// warnHost logs, once, a transparent follower whose Base is on another
// host than URL: relying parties follow the URIs of the origin's
// notification to the origin itself. (The origin should be named by its
// public URL, fetch_from saying where it really is.)
func (f *Follower) warnHost() {
	if f.hostWarned {
		return
	}
	f.hostWarned = true
	if o, err := upstream.Origin(f.cfg.Base); err != nil || o != f.origin {
		f.log.Warn("transparent: the base is on another host than the origin's notification, whose URIs relying parties will follow to the origin", "base", f.cfg.Base)
	}
}

// rel returns the path under Base at which the origin's file uri is
// served in transparent mode: its path under the directory of URL.
func (f *Follower) rel(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", uri, ErrOutside, err)
	}
	p, under := strings.CutPrefix(u.Path, f.dir)
	switch {
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
	case !under || p == "" || strings.HasSuffix(p, "/"):
	case path.Clean("/"+p) != "/"+p: // a server normalises such paths
	case p == "notification.xml" || p == "notification.bin" || p == path.Base(f.cfg.URL):
	default:
		return p, nil
	}
	return "", fmt.Errorf("%s is not a file under %s, the notification's directory, in clean form: reverse mode serves the origin's files at their own paths and cannot route it: %w", uri, f.dir, ErrOutside)
}

// noFallback marks a delta-path failure that taking the snapshot cannot
// mend, since the snapshot path needs the same file (transparent mode:
// the origin's snapshot, a listed delta).
type noFallback struct{ err error }

func (e *noFallback) Error() string { return e.err.Error() }
func (e *noFallback) Unwrap() error { return e.err }

// snapFetch is a fetch of the origin's snapshot, under way beside the
// deltas: the body goes to a spill (memory up to SpillThreshold, then a
// temporary file), hashed as it arrives, never whole in memory.
type snapFetch struct {
	done   chan struct{}
	cancel context.CancelFunc
	sp     *upstream.Spill
	err    error
}

// startSnapshot starts fetching the snapshot n names; close ends it.
func (f *Follower) startSnapshot(ctx context.Context, n *rrdpxml.Notification) *snapFetch {
	ctx, cancel := context.WithCancel(ctx)
	s := &snapFetch{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		s.sp, s.err = f.fetchSpill(ctx, rrdpxml.KindSnapshot, n.Snapshot.URI, n.Snapshot.Hash)
	}()
	return s
}

// wait returns the fetched snapshot, hash-checked, valid until close; a
// nil s gives nothing.
func (s *snapFetch) wait() (*upstream.Spill, error) {
	if s == nil {
		return nil, nil
	}
	<-s.done
	return s.sp, s.err
}

// close ends the fetch and removes its spill. A sync that failed for a
// reason the snapshot cannot mend (a listed delta missing, a held serial)
// stops the download here rather than wait for the whole snapshot: at
// every poll, a broken delta would otherwise pull it from the origin the
// proxy protects.
func (s *snapFetch) close() {
	s.cancel()
	if sp, _ := s.wait(); sp != nil {
		sp.Close()
	}
}

// originFiles returns the files of the origin's XML snapshot or delta b,
// whose SHA-256 up the fetch checked: the origin's bytes at its own path
// and, with bin, the .bin transcoded from them under session bs, then
// their gzip copies (XML, .bin, XML gzip, .bin gzip).
func (f *Follower) originFiles(b []byte, up [32]byte, uri string, kind rrdpxml.Kind, bs string, serial uint64, bin bool) ([]blob, error) {
	p, err := f.rel(uri)
	if err != nil {
		return nil, err
	}
	x := blob{File: File{Path: p, Sum: up, Size: int64(len(b)), Format: irpki.FormatXML, Kind: kind, Serial: serial, Upstream: up}, b: b}
	if !bin {
		return f.withGzip(x)
	}
	var buf bytes.Buffer
	buf.Grow(len(b) * 4 / 5) // .bin drops base64 and most markup
	if _, err := irpki.XMLToBin(&buf, bytes.NewReader(b), irpki.Options{Limits: f.cfg.Limits, Session: bs}); err != nil {
		return nil, fmt.Errorf("%s %d: transcode to .bin: %w", kind, serial, err)
	}
	pb := newBlob(buf.Bytes(), irpki.FormatBin, kind, bs, serial)
	pb.Upstream = up
	return f.withGzip(x, pb)
}

// servesAt reports whether held delta h holds the origin's file d at its
// own path (a delta held by a non-transparent head does not).
func (f *Follower) servesAt(h heldDelta, d rrdpxml.DeltaRef) bool {
	p, err := f.rel(d.URI)
	if err != nil {
		return false
	}
	for _, fl := range h.files {
		if fl.Format == irpki.FormatXML && !fl.Gzip && fl.Path == p && fl.Sum == d.Hash {
			return true
		}
	}
	return false
}

// publishOrigin ends a transparent delta sync whose deltas (blobs, the
// applied ones in st.held, their changes in ov) checked out: it fetches
// the listed deltas the node lacks, takes the origin's snapshot of the
// new serial (fetched in snap) and checks it against the state the
// deltas led to, then publishes. When the snapshot differs, its state is
// taken and the .bin moves to a new session, since its deltas would not
// lead to its snapshot.
//
// The work is the delta's plus passes over the snapshot, none of which
// holds it whole: its SHA-256 as it arrived (the spill), then one read
// from the spill, cut into segments, only the new ones hashed and
// compressed (originSegmenter), and the same bytes decoded and checked
// object by object against the deltas' state as they are cut, the
// contents of the previous serial's elements in unchanged segments taken
// as known (checkOrigin); beside them the .bin is made from the deltas'
// state as the regenerating path makes it (composite without XML: the
// chunks the delta changed, one hash pass).
func (f *Follower) publishOrigin(ctx context.Context, cur, st *state, n *rrdpxml.Notification, blobs []blob, ov *overlay, snap *snapFetch, conditional func(*state)) (bool, error) {
	if snap == nil {
		snap = f.startSnapshot(ctx, n)
		defer snap.close()
	}
	_, bs := st.sessions()
	// The .bin is the deltas' state's alone: it is made while the
	// origin's snapshot still arrives (on `large` its fetch is a second
	// or more), and dropped if the snapshot differs.
	order := nextOrder(cur.order, ov.changes, cur.objects)
	get := func(u string) object { o, _ := ov.get(u); return o }
	var bfiles []blob
	var frags *fragments
	var berr error
	var wg sync.WaitGroup
	defer wg.Wait() // the paths that fail before the check
	wg.Go(func() {
		bfiles, frags, berr = f.binFiles(ctx, order, get, xmlSize(cur.objects, ov.changes), bs, n.Serial, cur.frags, false, nil)
	})
	more, err := f.missingDeltas(ctx, n, bs, st.held)
	if err != nil {
		return false, &noFallback{err} // close stops the snapshot's download
	}
	blobs = append(blobs, more...)
	sp, err := snap.wait()
	if err != nil {
		return false, &noFallback{err}
	}
	xfiles, segs, check, err := f.checkOrigin(ctx, sp, n, cur.xsegs, ov)
	wg.Wait()
	if err != nil {
		return false, &noFallback{err}
	}
	diff, samples := check.result()
	commit := ov.commit
	if diff == 0 {
		if berr != nil {
			return false, &noFallback{berr}
		}
		st.order, st.frags = order, frags
		if frags != nil {
			commit = func() {
				ov.commit()
				frags.Realias(func(u string, c []byte) {
					if o, ok := cur.objects[u]; ok {
						o.content = c
						cur.objects[u] = o
					}
				})
			}
		}
	} else {
		// The origin's snapshot is authoritative: its objects, read again
		// from the spill, under a new .bin session.
		objects, err := readSnapshotFrom(readerCtx(ctx, sp.Reader()), irpki.FormatXML, n.SessionID, n.Serial, f.cfg.Limits)
		if err != nil {
			return false, &noFallback{fmt.Errorf("snapshot %s: %w", n.Snapshot.URI, err)}
		}
		samples = append(samples, missingFrom(objects, ov, 5)...)
		slices.Sort(samples)
		f.count(func(s *Stats) { s.SnapshotMismatches++ })
		f.log.Warn("the origin's snapshot differs from the state its deltas led to; taking the snapshot's", "serial", n.Serial, "objects", diff, "first", samples)
		st.objects, commit = objects, nil
		st.resets++
		_, bs = st.sessions()
		st.order = sortedURIs(objects)
		// st is not shared yet: its objects move to the segments.
		realias := func(u string, c []byte) { o := objects[u]; o.content = c; objects[u] = o }
		if bfiles, st.frags, err = f.binFiles(ctx, st.order, func(u string) object { return objects[u] }, xmlSize(objects, nil), bs, n.Serial, nil, true, realias); err != nil {
			return false, &noFallback{err}
		}
		if st.frags != nil {
			st.frags.Realias(realias)
		}
		blobs = slices.DeleteFunc(blobs, func(b blob) bool { return b.Format == irpki.FormatBin })
		for s, h := range st.held {
			h.files = slices.DeleteFunc(slices.Clone(h.files), func(fl File) bool { return fl.Format == irpki.FormatBin })
			st.held[s] = h
		}
	}
	st.xsegs = segs
	conditional(st)
	if err := f.publish(ctx, st, n, snapshotBlobs(xfiles, bfiles), blobs, commit); err != nil {
		return false, err
	}
	if diff != 0 {
		f.count(func(s *Stats) { s.Resets++ })
	}
	f.count(func(s *Stats) { s.Deltas += n.Serial - cur.serial })
	f.log.Info("applied deltas and took the origin's snapshot", "session", n.SessionID, "from", cur.serial, "to", n.Serial, "changes", len(ov.changes), "listed", len(more)/2, "decoded", check.decoded, "known", check.known)
	return true, nil
}

// snapshotBlobs orders a transparent snapshot's files as the other paths
// do: XML, .bin, then their gzip copies.
func snapshotBlobs(xml, bin []blob) []blob {
	return []blob{xml[0], bin[0], xml[1], bin[1]}
}

// originXML makes the files of the origin's XML snapshot in sp (n's, its
// hash checked as it arrived) while decode reads it too, from the spill
// in a second goroutine (the snapshot path: its objects become the
// state): the XML and its gzip copy, composite with the segments of prev
// reused when it is at least FragmentMin bytes, whole otherwise. A decode
// error is the snapshot's.
//
// The segments are decoded once more as they are cut, without their
// contents (rrdpxml's DeferContent: the markup, URIs and duplicates only,
// a fraction of a full decode), for the offsets of their elements, which
// the next serial's check takes from them (checkOrigin).
func (f *Follower) originXML(ctx context.Context, sp *upstream.Spill, n *rrdpxml.Notification, prev *originSegs, decode func(io.Reader) error) ([]blob, *originSegs, error) {
	p, err := f.rel(n.Snapshot.URI)
	if err != nil {
		return nil, nil, err
	}
	var derr error
	var wg sync.WaitGroup
	wg.Go(func() { derr = decode(readerCtx(ctx, sp.Reader())) })
	files, segs, err := f.segmentOrigin(ctx, sp, p, n, prev, nil)
	wg.Wait()
	if derr != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", n.Snapshot.URI, derr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", n.Snapshot.URI, err)
	}
	return files, segs, nil
}

// checkOrigin makes the files of the origin's XML snapshot in sp, as
// originXML does, and checks it against ov, the state the deltas led to,
// in the same read of the spill: the segmenter hands each segment to the
// decoder as it cuts it (segPipe). The check, done, says how many objects
// differ and the first URIs of those in the snapshot (snapshotCheck).
//
// A segment byte for byte the previous serial's is still decoded, its
// markup, URIs and duplicates checked as any other, but the content of an
// element the decoder starts at one of the offsets where that serial
// found one wholly inside the segment is not decoded: the element's bytes
// are those the previous serial decoded and found equal to its state, the
// base of ov, so its content is the base's (ov's changes are then what is
// compared). Everything else, a new segment, an element across a cut, or
// at another offset (the parse moved: a comment opened before it, say),
// is decoded and compared byte for byte. An object of the base that the
// deltas changed and the origin left in an unchanged segment is therefore
// a difference, as it was when every object was decoded.
func (f *Follower) checkOrigin(ctx context.Context, sp *upstream.Spill, n *rrdpxml.Notification, prev *originSegs, ov *overlay) ([]blob, *originSegs, *snapshotCheck, error) {
	p, err := f.rel(n.Snapshot.URI)
	if err != nil {
		return nil, nil, nil, err
	}
	c := &snapshotCheck{ov: ov}
	files, segs, err := f.segmentOrigin(ctx, sp, p, n, prev, c)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("snapshot %s: %w", n.Snapshot.URI, err)
	}
	return files, segs, c, nil
}

// segmentOrigin cuts the origin's snapshot in sp into its files, served
// at path p, and reads the same bytes with a decoder (decodeSegments),
// which hands every element to check if set; the offsets of the elements
// go to the segments for the next serial. A snapshot stored whole (under
// FragmentMin) has no segments: its elements are all decoded, and none
// at all without check.
func (f *Follower) segmentOrigin(ctx context.Context, sp *upstream.Spill, p string, n *rrdpxml.Notification, prev *originSegs, check *snapshotCheck) ([]blob, *originSegs, error) {
	size := sp.Size()
	if f.cfg.FragmentMin < 0 || size < f.cfg.FragmentMin {
		b, err := io.ReadAll(readerCtx(ctx, sp.Reader()))
		if err != nil {
			return nil, nil, fmt.Errorf("read the snapshot back: %w", err)
		}
		if int64(len(b)) != size {
			return nil, nil, fmt.Errorf("read the snapshot back: %d bytes, %d fetched", len(b), size)
		}
		if check != nil {
			pipe := newSegPipe()
			if err := pipe.send(cutSeg{b: b}); err != nil { // one new segment: the file
				return nil, nil, err
			}
			pipe.close(nil)
			if _, err := decodeSegments(pipe, n, f.cfg.Limits, check); err != nil {
				return nil, nil, err
			}
		}
		x := blob{File: File{Path: p, Sum: n.Snapshot.Hash, Size: size, Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: n.Serial, Upstream: n.Snapshot.Hash}, b: b}
		files, err := f.withGzip(x)
		return files, nil, err
	}
	s, err := newOriginSegmenter(prev, f.cfg.GzipLevel)
	if err != nil {
		return nil, nil, err
	}
	pipe := newSegPipe()
	s.out = pipe
	var serr error
	var wg sync.WaitGroup
	wg.Go(func() {
		r := readerCtx(ctx, sp.Reader())
		serr = s.fill(readFunc(func(b []byte) (int, error) {
			select {
			case <-pipe.done: // the decoder failed: the rest is not read
				return 0, errPipeStopped
			default:
				return r.Read(b)
			}
		}))
		pipe.close(serr)
	})
	elems, derr := decodeSegments(pipe, n, f.cfg.Limits, check)
	wg.Wait()
	// fill has returned and files does not compress: the deflater goes
	// back to the pool (its segments are copies, compress with keep).
	putDeflater(s.zd)
	s.zd = nil
	switch {
	case serr != nil && !errors.Is(serr, errPipeStopped):
		return nil, nil, serr
	case derr != nil:
		return nil, nil, derr
	}
	files, segs, err := s.files(p, n.Snapshot.Hash, size, n.Serial)
	if err != nil {
		return nil, nil, err
	}
	setElems(segs, pipe.seen(), elems)
	f.count(func(st *Stats) {
		st.OriginSegmentsBuilt += uint64(s.built)
		st.OriginSegmentsReused += uint64(s.reused)
	})
	return files, segs, nil
}

// decodeSegments decodes the XML snapshot n names from the segments
// pipe carries, content deferred, checks that it is of n's session and
// serial, and hands every element to check, if set, saying whether its
// content is known: whether it lies wholly inside a segment the previous
// serial had with the same bytes, at an offset where that serial's
// decoder found an element (cutSeg.elems). It returns, by segment, the
// offsets of the elements wholly inside it. It stops the pipe when it
// returns.
func decodeSegments(pipe *segPipe, n *rrdpxml.Notification, lim rrdpxml.Limits, check *snapshotCheck) ([][]int32, error) {
	defer pipe.stop()
	// The body was hashed as it arrived: the decoder does not hash it again.
	d := rrdpxml.NewDecoderUnhashed(pipe, lim)
	defer d.Close()
	d.DeferContent()
	if check != nil {
		d.ExpectElements(check.ov.size())
	}
	h, err := d.Header()
	if err != nil {
		return nil, err
	}
	if h.Kind != rrdpxml.KindSnapshot {
		return nil, fmt.Errorf("%w: a %s where a %s was expected", ErrMismatch, h.Kind, rrdpxml.KindSnapshot)
	}
	if h.SessionID != n.SessionID || h.Serial != n.Serial {
		return nil, fmt.Errorf("%w: snapshot of session %s serial %d, want session %s serial %d", ErrMismatch, h.SessionID, h.Serial, n.SessionID, n.Serial)
	}
	var segs []cutSeg
	var elems [][]int32
	i, j := 0, 0 // the segment of the last element, and where in its elems
	for {
		e, err := d.Next()
		if err == io.EOF {
			return elems, nil
		}
		if err != nil {
			return nil, err
		}
		for i >= len(segs) || e.Offset >= segs[i].start+int64(len(segs[i].b)) {
			if i < len(segs) {
				i, j = i+1, 0
				continue
			}
			// The decoder read these bytes, so their segment was sent.
			if segs = pipe.seen(); i >= len(segs) {
				return nil, fmt.Errorf("snapshot element at byte %d past the segments cut", e.Offset)
			}
		}
		sg := &segs[i]
		rel := e.Offset - sg.start
		// (A whole file past 2 GiB is one segment no serial reuses.)
		inside := e.End <= sg.start+int64(len(sg.b)) && rel <= math.MaxInt32
		known := false
		if inside {
			for j < len(sg.elems) && int64(sg.elems[j]) < rel {
				j++
			}
			known = j < len(sg.elems) && int64(sg.elems[j]) == rel
			for len(elems) <= i {
				elems = append(elems, nil)
			}
			elems[i] = append(elems[i], int32(rel))
		}
		if check != nil {
			if err := check.element(d, e, known); err != nil {
				return nil, err
			}
		}
	}
}

// binFiles writes the .bin snapshot of the objects in order (get reads
// one) at serial under bs, with its gzip copy, as snapshotFiles writes
// them, so that the bytes are the same (DESIGN.md, invariant 8):
// composite when the XML of the objects would take at least FragmentMin
// (size estimates it), reusing the segments of prev, else whole. It
// returns the fragments of the new snapshot when composite.
func (f *Follower) binFiles(ctx context.Context, order []string, get func(string) object, size int, bs string, serial uint64, prev *fragments, fresh bool, set func(string, []byte)) ([]blob, *fragments, error) {
	return f.snapshotFiles(ctx, order, get, size, "", bs, serial, prev, fresh, set)
}

// curXSegs returns the origin's snapshot segments of the current state,
// or nil.
func (f *Follower) curXSegs() *originSegs {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nil
	}
	return f.cur.xsegs
}

// snapshotCheck compares the elements of an XML snapshot, as they are
// decoded, with ov's view: result says how many objects differ (missing
// from one side, or with other bytes), with the first few URIs of those
// in the snapshot. Neither side is materialised, and the URIs seen are
// counted, not remembered, since the decoder refuses a URI published
// twice (rrdpxml.ErrDuplicateURI), in a reused segment or not.
type snapshotCheck struct {
	ov          *overlay
	diff, found int
	// decoded and known count the elements whose content was decoded
	// and those whose content was known (not decoded).
	decoded, known int
	samples        []string
}

// element checks e, whose content d decodes unless known says the bytes
// are those of an element of the previous serial's snapshot, which was
// the state ov's changes apply to (decodeSegments).
func (c *snapshotCheck) element(d *rrdpxml.Decoder, e *rrdpxml.Element, known bool) error {
	if e.Withdraw || e.HasHash {
		return fmt.Errorf("%w: snapshot element %s with withdraw or hash", ErrMismatch, e.URI)
	}
	if known {
		// Its content is the base's: an object of the base the deltas
		// did not change is the view's, without a lookup in the base
		// (0.17 s of the check's 0.47 s in a profile of a one-object
		// serial on `large`); a changed one is compared.
		ch, changed := c.ov.changes[e.URI]
		if !changed {
			c.known++
			c.found++
			return nil
		}
		// (A base without it cannot be the previous serial's state;
		// decode it then, as any other.)
		if b, ok := c.ov.base[e.URI]; ok {
			c.known++
			if ch != nil {
				c.found++
			}
			if ch == nil || !bytes.Equal(ch.content, b.content) { // withdrawn, or replaced
				c.differs(e.URI)
			}
			return nil
		}
	}
	content, err := d.Content()
	if err != nil {
		return err
	}
	c.decoded++
	o, ok := c.ov.get(e.URI)
	if ok {
		c.found++
	}
	// The bytes, not their hash: an object's content is always held
	// (the .bin is made from it), equal bytes are what the hash would
	// say, and a comparison costs a fraction of a SHA-256 of every
	// object at every serial (0.37 s of the 4.2 s of CPU of a one-object
	// serial on `large`: docs/bench/state.md).
	if !ok || !bytes.Equal(o.content, content) {
		c.differs(e.URI)
	}
	return nil
}

func (c *snapshotCheck) differs(uri string) {
	c.diff++
	if len(c.samples) < 5 {
		c.samples = append(c.samples, uri)
	}
}

// result returns the objects that differ, those of the view the snapshot
// lacks included, and the first URIs of those it holds.
func (c *snapshotCheck) result() (int, []string) {
	return c.diff + c.ov.size() - c.found, c.samples
}

// missingFrom returns up to n URIs of ov's view that objects lacks.
func missingFrom(objects map[string]object, ov *overlay, n int) []string {
	var out []string
	add := func(u string) {
		if _, ok := objects[u]; !ok && len(out) < n {
			out = append(out, u)
		}
	}
	for u := range ov.base {
		if _, ch := ov.changes[u]; !ch {
			add(u)
		}
	}
	for u, c := range ov.changes {
		if c != nil {
			add(u)
		}
	}
	return out
}

// originDeltas makes the files of the origin's deltas refs (bodies
// fetched and hash-checked) and records them in held: with .bin where
// inBin says so (a delta checked against the state, in the .bin
// session's chain), XML only otherwise, after a check that the delta is
// well formed and of the session and serial listed.
func (f *Follower) originDeltas(refs []rrdpxml.DeltaRef, bodies [][]byte, inBin []bool, session, bs string, held map[uint64]heldDelta) ([]blob, error) {
	var blobs []blob
	for i, d := range refs {
		if !inBin[i] {
			err := walk(bodies[i], irpki.FormatXML, rrdpxml.KindDelta, session, d.Serial, f.cfg.Limits, func(*element) error { return nil })
			if err != nil {
				return nil, fmt.Errorf("delta %s: %w", d.URI, err)
			}
		}
		fs, err := f.originFiles(bodies[i], d.Hash, d.URI, rrdpxml.KindDelta, bs, d.Serial, inBin[i])
		if err != nil {
			return nil, err
		}
		blobs = append(blobs, fs...)
		held[d.Serial] = heldDelta{upstream: d.Hash, files: files(fs)}
	}
	return blobs, nil
}

// listedOrigin is listedDeltas in transparent mode: every delta the
// origin lists is fetched, since the origin's notification is served as
// it is; a failed fetch fails the sync. The contiguous run ending at the
// snapshot's serial that checks out against the snapshot (as in
// listedDeltas) is served as .bin too, while the .bin session is the
// upstream's.
func (f *Follower) listedOrigin(ctx context.Context, st *state, n *rrdpxml.Notification) ([]blob, error) {
	if len(n.Deltas) > f.cfg.MaxDeltas {
		return nil, fmt.Errorf("notification %s lists %d deltas, more than the %d a sync fetches (max deltas): transparent mode serves the origin's notification only with every file it names", f.cfg.URL, len(n.Deltas), f.cfg.MaxDeltas)
	}
	refs := slices.Clone(n.Deltas)
	slices.SortFunc(refs, func(a, b rrdpxml.DeltaRef) int { return cmp.Compare(a.Serial, b.Serial) })
	if len(refs) == 0 {
		return nil, nil
	}
	bodies, err := f.fetchDeltas(ctx, refs)
	if err != nil {
		return nil, err
	}
	inBin := make([]bool, len(refs))
	if st.resets == 0 {
		hashes := make(map[string][32]byte, len(st.objects))
		for u, o := range st.objects {
			hashes[u] = o.hash
		}
		want := n.Serial
		for i := len(refs) - 1; i >= 0 && refs[i].Serial == want; i-- {
			if err := unapply(bodies[i], st, refs[i].Serial, hashes, f.cfg.Limits); err != nil {
				f.classify(err)
				f.log.Warn("a listed delta does not lead to the snapshot; serving it as the origin's XML only, not as .bin", "err", err)
				break
			}
			inBin[i] = true
			want--
		}
	}
	_, bs := st.sessions()
	return f.originDeltas(refs, bodies, inBin, st.session, bs, st.held)
}

// missingDeltas fetches, in a transparent delta sync, the deltas n lists
// that held lacks, and records them in held as XML only: they were not
// applied, so they cannot be checked against a state.
func (f *Follower) missingDeltas(ctx context.Context, n *rrdpxml.Notification, bs string, held map[uint64]heldDelta) ([]blob, error) {
	if len(n.Deltas) > f.cfg.MaxDeltas {
		return nil, fmt.Errorf("notification %s lists %d deltas, more than the %d a sync fetches (max deltas): transparent mode serves the origin's notification only with every file it names", f.cfg.URL, len(n.Deltas), f.cfg.MaxDeltas)
	}
	var refs []rrdpxml.DeltaRef
	for _, d := range n.Deltas {
		if _, ok := held[d.Serial]; !ok {
			refs = append(refs, d)
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	bodies, err := f.fetchDeltas(ctx, refs)
	if err != nil {
		return nil, err
	}
	f.log.Info("fetched the listed deltas the node did not hold", "deltas", len(refs))
	return f.originDeltas(refs, bodies, make([]bool, len(refs)), n.SessionID, bs, held)
}

// holdsAll checks, before a transparent head is published, that fls (the
// head's current files) hold every file the origin's notification n
// names, at its path and with its hash (DESIGN.md, invariant 1).
func (f *Follower) holdsAll(n *rrdpxml.Notification, fls []File) error {
	have := make(map[string][32]byte, len(fls))
	for _, fl := range fls {
		if fl.Format == irpki.FormatXML && !fl.Gzip {
			have[fl.Path] = fl.Sum
		}
	}
	check := func(uri string, sum [32]byte) error {
		p, err := f.rel(uri)
		if err != nil {
			return err
		}
		if got, ok := have[p]; !ok || got != sum {
			return fmt.Errorf("publish serial %d: the origin's notification names %s, which the head does not hold: %w", n.Serial, uri, errNotHeld)
		}
		return nil
	}
	if err := check(n.Snapshot.URI, n.Snapshot.Hash); err != nil {
		return err
	}
	for _, d := range n.Deltas {
		if err := check(d.URI, d.Hash); err != nil {
			return err
		}
	}
	return nil
}

// errNotHeld: a transparent head would name a file it does not hold; a
// bug of the follower, never published.
var errNotHeld = errors.New("file not held")

// readerCtx reads r until ctx ends: the passes over a spilled snapshot
// (seconds on a big one) stop with the sync's context, at a shutdown or a
// lost lease.
func readerCtx(ctx context.Context, r io.Reader) io.Reader {
	return readFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

// readFunc is an io.Reader from a function.
type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }
