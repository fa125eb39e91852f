package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// blob is a file to publish and its bytes.
type blob struct {
	File
	b []byte // nil for a composite file
	// parts are blobs to store before the file: the part list of a
	// composite file, and the new segments of the snapshot it belongs to.
	parts []segment
}

func newBlob(b []byte, f irpki.Format, kind rrdpxml.Kind, session string, serial uint64) blob {
	return newBlobSum(b, sha256.Sum256(b), f, kind, session, serial)
}

// newBlobSum is newBlob for bytes whose SHA-256 is already known.
func newBlobSum(b []byte, sum [32]byte, f irpki.Format, kind rrdpxml.Kind, session string, serial uint64) blob {
	return blob{File: File{Path: irpki.FilePath(kind, f, session, serial, sum), Sum: sum, Size: int64(len(b)), Format: f, Kind: kind, Serial: serial}, b: b}
}

// sessions returns the served sessions of st: XML and .bin.
func (st *state) sessions() (xml, bin string) {
	return servedSessions(st.session, st.format, st.resets, st.transparent)
}

// pair returns a fetched file of upstream session u in both formats under
// the served sessions xs and bs, then their gzip copies: XML, .bin, XML
// gzip, .bin gzip. up is the SHA-256 of b, checked by fetchFile against
// the notification: the bytes kept as fetched are not hashed again.
func (f *Follower) pair(b []byte, up [32]byte, format irpki.Format, kind rrdpxml.Kind, u, xs, bs string, serial uint64) ([]blob, error) {
	x, p, err := transcode(b, format, u, xs, bs, f.cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("%s %d: %w", kind, serial, err)
	}
	mk := func(c []byte, ft irpki.Format, session string) blob {
		if len(c) == len(b) && (len(b) == 0 || &c[0] == &b[0]) { // b kept as fetched
			return newBlobSum(c, up, ft, kind, session, serial)
		}
		return newBlob(c, ft, kind, session, serial)
	}
	xb, pb := mk(x, irpki.FormatXML, xs), mk(p, irpki.FormatBin, bs)
	xb.Upstream, pb.Upstream = up, up
	return f.withGzip(xb, pb)
}

// files returns the Files of bs.
func files(bs []blob) []File {
	out := make([]File, len(bs))
	for i, b := range bs {
		out[i] = b.File
	}
	return out
}

// syncSnapshot takes the snapshot n names as the new state. reset asks
// for a new served session (a desynchronisation or a serial that went
// backwards); a new one is also taken whenever the served session would
// otherwise not move forward.
// In transparent mode pre, if set, is the snapshot's fetch already under
// way.
func (f *Follower) syncSnapshot(ctx context.Context, n *rrdpxml.Notification, format irpki.Format, reset bool, conditional func(*state), pre *snapFetch) error {
	var objs map[string]object
	var size int64
	var sp *upstream.Spill // transparent: the origin's snapshot, decoded below
	var err error
	switch {
	case pre != nil:
		sp, err = pre.wait() // closed by the caller
	case f.transparent(format):
		if sp, err = f.fetchSpill(ctx, rrdpxml.KindSnapshot, n.Snapshot.URI, n.Snapshot.Hash); err == nil {
			defer sp.Close()
		}
	default:
		// Regenerating: the origin's bytes are not served; decode them
		// from the spill as they are read, never whole in memory.
		if sp, err = f.fetchSpill(ctx, rrdpxml.KindSnapshot, n.Snapshot.URI, n.Snapshot.Hash); err != nil {
			return err
		}
		size = sp.Size()
		objs, err = readSnapshotFrom(readerCtx(ctx, sp.Reader()), format, n.SessionID, n.Serial, f.cfg.Limits)
		sp.Close()
		sp = nil
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", n.Snapshot.URI, err)
		}
	}
	if err != nil {
		return err
	}
	// Transparent: the origin's XML is stored as it is read back from the
	// spill, while a second read decodes its objects.
	var xfiles []blob
	var xsegs *originSegs
	if sp != nil {
		size = sp.Size()
		decode := func(r io.Reader) error {
			var err error
			objs, err = readSnapshotFrom(r, format, n.SessionID, n.Serial, f.cfg.Limits)
			return err
		}
		if xfiles, xsegs, err = f.originXML(ctx, sp, n, f.curXSegs(), decode); err != nil {
			return err
		}
	}
	f.mu.Lock()
	prev := f.head
	f.mu.Unlock()
	st := &state{session: n.SessionID, serial: n.Serial, format: format, objects: objs, held: map[uint64]heldDelta{}, transparent: f.transparent(format)}
	if prev != nil && prev.Session == n.SessionID && prev.Origin == format {
		st.resets = prev.Resets
		if reset {
			st.resets++
		}
	}
	for checkOrder(prev, &Head{Session: n.SessionID, Serial: n.Serial, Origin: format, Resets: st.resets, Transparent: st.transparent}) != nil {
		st.resets++
	}
	xs, bs := st.sessions()
	var snap, deltas []blob
	switch {
	case st.transparent:
		// The .bin from the objects, as the regenerating path makes it.
		st.order, st.xsegs = sortedURIs(objs), xsegs
		realias := func(u string, c []byte) { o := objs[u]; o.content = c; objs[u] = o }
		var bfiles []blob
		if bfiles, st.frags, err = f.binFiles(ctx, st.order, func(u string) object { return objs[u] }, xmlSize(objs, nil), bs, n.Serial, f.curFrags(), true, realias); err != nil {
			return err
		}
		if st.frags != nil {
			st.frags.Realias(realias)
		}
		snap = snapshotBlobs(xfiles, bfiles)
		// The origin's notification, served as it is, names them all.
		if deltas, err = f.listedOrigin(ctx, st, n); err != nil {
			return err
		}
	default:
		// Canonical, as a state reached by deltas: the snapshot of a
		// serial depends on the session and the objects alone, never on
		// the path a node took to it, so that the nodes of a fleet (with
		// or without Redis) and independent mirrors serve the same bytes.
		st.order = sortedURIs(objs)
		// st is not shared yet: its objects move to the segments as
		// they are built (composite's set), then the rest (Realias).
		realias := func(u string, c []byte) { o := objs[u]; o.content = c; objs[u] = o }
		if snap, st.frags, err = f.snapshotFiles(ctx, st.order, func(u string) object { return objs[u] }, xmlSize(objs, nil), xs, bs, n.Serial, f.curFrags(), true, realias); err != nil {
			return err
		}
		if st.frags != nil {
			st.frags.Realias(realias)
		}
		if st.resets == 0 {
			// RPs may be at older serials of this session: serve them the
			// deltas the origin lists. A new served session has no such RPs.
			if deltas, err = f.listedDeltas(ctx, st, n); err != nil {
				return err
			}
		}
	}
	conditional(st)
	if err := f.publish(ctx, st, n, snap, deltas, nil); err != nil {
		return err
	}
	f.count(func(s *Stats) {
		s.Snapshots++
		if st.resets > 0 && (prev == nil || prev.Session != n.SessionID || st.resets > prev.Resets) {
			s.Resets++
		}
	})
	f.log.Info("took the snapshot", "session", n.SessionID, "serial", n.Serial, "served", xs, "objects", len(objs), "bytes", size, "deltas", len(st.held))
	return nil
}

// syncDeltas fetches the deltas from cur.serial to n.Serial, checks them
// and applies them. It reports false with the reason when the snapshot
// must be taken instead; cur is untouched then. In transparent mode snap
// is the fetch of the origin's snapshot of n.Serial, under way, and an
// error the snapshot path cannot mend is a *noFallback.
func (f *Follower) syncDeltas(ctx context.Context, cur *state, n *rrdpxml.Notification, format irpki.Format, conditional func(*state), snap *snapFetch) (bool, error) {
	transparent := f.transparent(format)
	listed := make(map[uint64]rrdpxml.DeltaRef, len(n.Deltas))
	for _, d := range n.Deltas {
		listed[d.Serial] = d
	}
	if n.Serial-cur.serial > uint64(f.cfg.MaxDeltas) {
		return false, fmt.Errorf("%d deltas behind, more than %d", n.Serial-cur.serial, f.cfg.MaxDeltas)
	}
	var refs []rrdpxml.DeltaRef
	for s := cur.serial + 1; s <= n.Serial; s++ {
		d, ok := listed[s]
		if !ok {
			return false, fmt.Errorf("delta %d not listed: %w", s, ErrGap)
		}
		refs = append(refs, d)
	}

	bodies, err := f.fetchDeltas(ctx, refs)
	if err != nil {
		return false, err
	}
	xs, bs := cur.sessions()
	ov := &overlay{base: cur.objects, changes: make(map[string]*object)}
	var blobs []blob
	held := make(map[uint64]heldDelta)
	for s, h := range cur.held {
		if d, ok := listed[s]; ok && d.Hash == h.upstream && (!transparent || f.servesAt(h, d)) {
			held[s] = h
		}
	}
	if cur.order == nil {
		cur.order = sortedURIs(cur.objects)
	}
	// The snapshots of the serials passed on the way, when there are a
	// few: another node of a fleet that stopped at one of them (Redis
	// down, each node polling alone) names it in its notification, and a
	// relying party behind a load balancer may ask this node for it. Their
	// files are retained, not named; with fragments one costs its changed
	// chunks and a hash pass.
	var passed []File
	var aliases []*fragments
	frags := cur.frags
	for i, d := range refs {
		if err := ov.applyDelta(bodies[i], format, n.SessionID, d.Serial, f.cfg.Limits); err != nil {
			return false, fmt.Errorf("delta %s: %w", d.URI, err)
		}
		if !transparent && i < len(refs)-1 && len(refs) <= maxPassed {
			order := nextOrder(cur.order, ov.changes, cur.objects)
			get := func(u string) object { o, _ := ov.get(u); return o }
			snap, fr, err := f.snapshotFiles(ctx, order, get, xmlSize(cur.objects, ov.changes), xs, bs, d.Serial, frags, false, nil)
			if err != nil {
				return false, err
			}
			blobs = append(blobs, snap...)
			passed = append(passed, files(snap)...)
			if fr != nil {
				frags = fr
				aliases = append(aliases, fr)
			}
		}
		var pair []blob
		if transparent {
			pair, err = f.originFiles(bodies[i], d.Hash, d.URI, rrdpxml.KindDelta, bs, d.Serial, true)
		} else {
			pair, err = f.pair(bodies[i], d.Hash, format, rrdpxml.KindDelta, n.SessionID, xs, bs, d.Serial)
		}
		if err != nil {
			return false, err
		}
		blobs = append(blobs, pair...)
		held[d.Serial] = heldDelta{upstream: d.Hash, files: files(pair)}
	}
	st := &state{session: cur.session, serial: n.Serial, format: format, objects: cur.objects, resets: cur.resets, held: held, transparent: transparent}
	if transparent {
		return f.publishOrigin(ctx, cur, st, n, blobs, ov, snap, conditional)
	}

	// The snapshot at the new serial, regenerated from the objects.
	st.order = nextOrder(cur.order, ov.changes, cur.objects)
	st.passed = passed
	get := func(u string) object { o, _ := ov.get(u); return o }
	regen, frags, err := f.snapshotFiles(ctx, st.order, get, xmlSize(cur.objects, ov.changes), xs, bs, n.Serial, frags, false, nil)
	if err != nil {
		return false, err
	}
	st.frags = frags
	if frags != nil {
		aliases = append(aliases, frags)
	}
	for _, fr := range aliases {
		if fr.cold {
			st.cold = aliases // in serial order, for readBack
			break
		}
	}

	commit := ov.commit
	if len(aliases) > 0 && st.cold == nil {
		// With a cold one, readBack realiases them all: for each object
		// the last serial's entry alone (lastOnly).
		commit = func() {
			ov.commit()
			// In serial order: a chunk encoded again later takes its
			// objects to the later segment.
			for _, fr := range aliases {
				fr.Realias(func(u string, c []byte) {
					if o, ok := cur.objects[u]; ok {
						o.content = c
						cur.objects[u] = o
					}
				})
			}
		}
	}
	conditional(st)
	if err := f.publish(ctx, st, n, regen, blobs, commit); err != nil {
		// A store failure is not the deltas' fault, but the overlay is
		// dropped all the same: the next sync starts again from cur.
		return false, err
	}
	f.count(func(s *Stats) { s.Deltas += uint64(len(refs)) })
	f.log.Info("applied deltas", "session", n.SessionID, "from", cur.serial, "to", n.Serial, "changes", len(ov.changes))
	return true, nil
}

// maxPassed bounds the deltas of a sync for which the snapshots of the
// serials passed on the way are written (syncDeltas).
const maxPassed = 8

// snapshotFiles writes the snapshot of the objects in order (get reads
// one) at serial, XML under xs (none when xs is "") and .bin under bs,
// with its gzip copies:
// composite when its XML (about size bytes) reaches FragmentMin, reusing
// the segments of prev, else whole. It returns the fragments of the new
// snapshot when composite.
func (f *Follower) snapshotFiles(ctx context.Context, order []string, get func(string) object, size int, xs, bs string, serial uint64, prev *fragments, fresh bool, set func(string, []byte)) ([]blob, *fragments, error) {
	if lim := f.cfg.Limits.WithDefaults(); len(order) > lim.MaxObjects {
		// As the whole regeneration's writer would refuse it.
		return nil, nil, fmt.Errorf("regenerate snapshot %d: %d objects, over the limit of %d: %w", serial, len(order), lim.MaxObjects, rrdpxml.ErrTooLarge)
	}
	if f.cfg.FragmentMin >= 0 && int64(size) >= f.cfg.FragmentMin {
		files, fr, err := composite(order, get, xs, bs, serial, prev, f.cfg.GzipLevel, fresh, set, f.segStore(ctx))
		if err == nil {
			f.count(func(s *Stats) { s.FragmentsBuilt += uint64(fr.built); s.FragmentsReused += uint64(fr.reused) })
		}
		return files, fr, err
	}
	objs := func(yield func(string, object) bool) {
		for _, u := range order {
			if !yield(u, get(u)) {
				return
			}
		}
	}
	if xs == "" {
		// The .bin alone (binFiles): the XML made beside it is dropped,
		// and the .bin is the same bytes as the regenerating path's by
		// construction.
		_, p, err := regenerate(objs, size, bs, bs, serial, f.cfg.Limits)
		if err != nil {
			return nil, nil, err
		}
		files, err := f.withGzip(newBlob(p, irpki.FormatBin, rrdpxml.KindSnapshot, bs, serial))
		return files, nil, err
	}
	x, p, err := regenerate(objs, size, xs, bs, serial, f.cfg.Limits)
	if err != nil {
		return nil, nil, err
	}
	files, err := f.withGzip(newBlob(x, irpki.FormatXML, rrdpxml.KindSnapshot, xs, serial),
		newBlob(p, irpki.FormatBin, rrdpxml.KindSnapshot, bs, serial))
	return files, nil, err
}

// curFrags returns the fragments of the current state, or nil.
func (f *Follower) curFrags() *fragments {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nil
	}
	return f.cur.frags
}

// sortedURIs returns the URIs of objs in canonical order: the order of
// the objects in every snapshot the follower writes, so that it depends
// on the set of objects alone.
func sortedURIs(objs map[string]object) []string {
	uris := make([]string, 0, len(objs))
	for u := range objs {
		uris = append(uris, u)
	}
	slices.SortFunc(uris, canonicalCompare)
	return uris
}

// nextOrder returns the canonical order of base after changes, from the
// order of base: old with the withdrawn URIs removed and the new ones
// merged in. It returns old itself when no URI came or went.
func nextOrder(old []string, changes map[string]*object, base map[string]object) []string {
	var added []string
	removed := make(map[string]bool)
	for u, c := range changes {
		_, had := base[u]
		switch {
		case c == nil && had:
			removed[u] = true
		case c != nil && !had:
			added = append(added, u)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return old
	}
	slices.SortFunc(added, canonicalCompare)
	out := make([]string, 0, len(old)+len(added)-len(removed))
	i := 0
	for _, u := range old {
		if removed[u] {
			continue
		}
		for i < len(added) && canonicalCompare(added[i], u) < 0 {
			out = append(out, added[i])
			i++
		}
		out = append(out, u)
	}
	return append(out, added[i:]...)
}

// fetchDeltas fetches refs, at most Parallel at once, and checks their
// hashes. The first error cancels the others.
func (f *Follower) fetchDeltas(ctx context.Context, refs []rrdpxml.DeltaRef) ([][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bodies := make([][]byte, len(refs))
	errs := make([]error, len(refs))
	sem := make(chan struct{}, f.cfg.Parallel)
	var wg sync.WaitGroup
	for i, d := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			bodies[i], errs[i] = f.fetchFile(ctx, rrdpxml.KindDelta, d.URI, d.Hash)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("delta %d: %w", refs[i].Serial, err)
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("delta %d: %w", refs[i].Serial, err)
		}
	}
	return bodies, nil
}

// publish stores the blobs of a new state (snap: the snapshot files and
// their gzip copies; deltas: new delta files), then its head, and only
// then makes st the current state (running commit first, if set).
func (f *Follower) publish(ctx context.Context, st *state, n *rrdpxml.Notification, snap, deltas []blob, commit func()) error {
	now := f.cfg.Now()
	xs, bs := st.sessions()
	f.mu.Lock()
	prev := f.head
	f.mu.Unlock()
	h := &Head{Repo: f.cfg.URL, Session: n.SessionID, Serial: n.Serial, Resets: st.resets, Origin: st.format, Time: now, Transparent: st.transparent}
	if err := checkOrder(prev, h); err != nil {
		return err
	}
	for _, b := range append(snap[:len(snap):len(snap)], deltas...) {
		for _, p := range b.parts {
			if err := f.cfg.Store.PutBlob(ctx, p.sum, p.b); err != nil {
				return fmt.Errorf("store a part of %s: %w: %w", b.Path, errStore, err)
			}
		}
		if b.Composite() {
			continue
		}
		if err := f.cfg.Store.PutBlob(ctx, b.Sum, b.b); err != nil {
			return fmt.Errorf("store %s: %w: %w", b.Path, errStore, err)
		}
	}
	xsums := irpki.Sums{Deltas: make(map[uint64][32]byte)}
	bsums := irpki.Sums{Deltas: make(map[uint64][32]byte)}
	sums := func(fl File) {
		if fl.Gzip {
			return
		}
		ss := &xsums
		if fl.Format == irpki.FormatBin {
			ss = &bsums
		}
		if fl.Kind == rrdpxml.KindSnapshot {
			ss.Snapshot = fl.Sum
		} else {
			ss.Deltas[fl.Serial] = fl.Sum
		}
	}
	fls := files(snap)
	serials := make([]uint64, 0, len(st.held))
	for s := range st.held {
		serials = append(serials, s)
	}
	sort.Slice(serials, func(i, j int) bool { return serials[i] > serials[j] })
	for _, s := range serials {
		fls = append(fls, st.held[s].files...)
	}
	for _, fl := range fls {
		sums(fl)
	}
	var nxml []byte
	if st.transparent {
		// The origin's notification, as it is, once every file it names
		// is held.
		if st.notif == nil {
			return fmt.Errorf("publish serial %d: no origin notification: %w", n.Serial, errNotHeld)
		}
		if err := f.holdsAll(n, fls); err != nil {
			return err
		}
		nxml = st.notif
	} else {
		nx := *n
		nx.SessionID = xs
		var xbuf bytes.Buffer
		if err := rrdpxml.EncodeNotificationLimits(&xbuf, irpki.MapNotification(&nx, f.cfg.Base, irpki.FormatXML, xsums), f.cfg.Limits); err != nil {
			return fmt.Errorf("encode notification.xml: %w", err)
		}
		nxml = xbuf.Bytes()
	}
	nb := *n
	nb.SessionID = bs
	nbin, err := irpki.MarshalNotificationLimits(irpki.MapNotification(&nb, f.cfg.Base, irpki.FormatBin, bsums), f.cfg.Limits)
	if err != nil {
		return fmt.Errorf("encode notification.bin: %w", err)
	}
	st.deltaHashes = make(map[uint64][32]byte, len(n.Deltas))
	for _, d := range n.Deltas {
		st.deltaHashes[d.Serial] = d.Hash
	}

	// Files that left the notification stay for the retention.
	type key struct {
		path string
		gzip bool
	}
	// Sized once for the files retained too: a head of thousands of
	// retained files would otherwise grow the map and the slice a few
	// times each serial.
	carried := len(st.passed)
	if prev != nil {
		carried += len(prev.Files)
	}
	fls = slices.Grow(fls, carried)
	current := make(map[key]bool, len(fls)+carried)
	for _, fl := range fls {
		current[key{fl.Path, fl.Gzip}] = true
	}
	for _, fl := range st.passed {
		// The snapshots of the serials passed on the way: retained.
		k := key{fl.Path, fl.Gzip}
		if !current[k] {
			current[k] = true
			fl.Expires = now.Add(f.cfg.Retention)
			fls = append(fls, fl)
		}
	}
	// dropped: a retained file every tier of the store dropped (loser).
	// It takes a pointer into a head's Files: a File given by value to
	// the interface's method would escape, one allocation per retained
	// file per serial.
	dropped := func(*File) bool { return false }
	if l, ok := f.cfg.Store.(loser); ok {
		dropped = func(fl *File) bool { return !fl.Expires.IsZero() && l.Lost(fl) }
	}
	if prev != nil {
		for i := range prev.Files {
			fl := &prev.Files[i]
			k := key{fl.Path, fl.Gzip}
			if current[k] {
				continue
			}
			if fl.Expires.IsZero() {
				c := *fl
				c.Expires = now.Add(f.cfg.Retention)
				fl = &c
			}
			if fl.Expires.After(now) && !dropped(fl) {
				current[k] = true
				fls = append(fls, *fl)
			}
		}
	}
	h.NotificationXML, h.NotificationBin, h.Files = nxml, nbin, fls
	if err := f.cfg.Store.PutHead(ctx, f.cfg.Repo, h); err != nil {
		if errors.Is(err, ErrHeld) {
			f.held(h, err)
		}
		return fmt.Errorf("store head: %w: %w", errStore, err)
	}
	// A capped state directory may have dropped retained files to make
	// room for this very head, which it stored without them: the head the
	// next serial carries over leaves them out too (h itself is the
	// store's now, not to be changed).
	for i := range h.Files {
		if !dropped(&h.Files[i]) {
			continue
		}
		kept := *h
		kept.Files = make([]File, 0, len(h.Files)-1)
		for j := range h.Files {
			if !dropped(&h.Files[j]) {
				kept.Files = append(kept.Files, h.Files[j])
			}
		}
		h = &kept
		break
	}
	f.mu.Lock()
	if commit != nil {
		commit() // under mu: WalkObjects reads the same map
	}
	f.cur, f.head = st, h
	f.stats.Session, f.stats.Serial = n.SessionID, n.Serial
	f.mu.Unlock()
	f.release(st.frags)
	if cold := st.coldFrags(); len(cold) > 0 {
		f.readBack(ctx, st, cold)
	}
	return nil
}

// loser is a Store that says whether its tiers lost a retained file for
// good (cache.Cache.Lost: a state directory dropped it to keep to its
// cap): publish leaves such files out of the next head, whose retained
// files are then bounded by the cap, not by the retention.
type loser interface{ Lost(f *File) bool }

// collectAbove is the size of a cold serial's segments from which
// readBack forces its collections. Below it the old segments are freed by
// the collector's own pacing, at a cost of at most that much more heap
// for a moment: less than what a forced collection cost. In the paper-1ca
// soak a cold serial (a sync over two or three deltas, about 20 MB of
// segments) forced two, and each time RSS fell by about 22 MiB, which the
// next serials faulted in again (docs/bench/state.md, "Forced
// collections").
const collectAbove = 64 << 20

// forceCollect reports whether readBack forces its collections for the
// fragments of a cold sync: whether the segments they built are at least
// collectAbove.
func forceCollect(frs []*fragments) bool {
	var n int64
	for _, fr := range frs {
		n += fr.builtBytes
	}
	return n >= collectAbove
}

// readBack ends a cold serial (segStore), once its head is in place: the
// store no longer pins the old state's segments, and nothing else holds
// them but the objects of the chunks built, which still share their
// contents with the old .bin segments. It collects the old segments first,
// so that the new ones, read back from the store, reuse their memory
// instead of adding to it; moves those objects to the new .bin segments
// (load, Realias); collects the old .bin segments; and reads the rest of
// the new state back (Warm). The collections are forced, when the
// segments to read back are at least collectAbove, because the collector
// would otherwise wait for the heap to double the served state (GOGC)
// before it ran: the peak this path exists to avoid. A failure here costs
// memory, not correctness: an object keeps its old content, the same
// bytes, and a blob not read back is read on its first request.
func (f *Follower) readBack(ctx context.Context, st *state, frs []*fragments) {
	cs, ok := f.cfg.Store.(coldStore)
	if !ok {
		return
	}
	force := forceCollect(frs)
	collect := func() {
		if force {
			runtime.GC()
		}
	}
	collect()
	lastOnly(frs)
	for _, fr := range frs {
		if err := fr.load(ctx, cs.Blob); err != nil {
			f.log.Warn("cold serial: objects left on their old segments", "serial", st.serial, "err", err)
		}
	}
	f.mu.Lock()
	for _, fr := range frs {
		fr.Realias(func(u string, c []byte) {
			if o, ok := st.objects[u]; ok {
				o.content = c
				st.objects[u] = o
			}
		})
		fr.realias = nil
	}
	f.mu.Unlock()
	st.cold = nil
	collect()
	if n, err := cs.Warm(ctx, f.cfg.Repo); err != nil {
		f.log.Warn("cold serial: the new state not all read back; the rest is read on demand", "serial", st.serial, "read", n, "err", err)
	}
}

// held records that the Store holds h back.
func (f *Follower) held(h *Head, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hd := &f.stats.Holding
	if hd.Session != h.Session || hd.Serial != h.Serial {
		*hd = Holding{Session: h.Session, Serial: h.Serial, Since: f.cfg.Now()}
	}
	hd.Err = err.Error()
}
