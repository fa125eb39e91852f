package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// A big snapshot is stored as fragments (DESIGN.md, "State and memory"):
// the objects, in canonical order, are cut into chunks at boundaries that
// depend on their URIs alone; each chunk is one segment of the XML, one of
// the .bin and one deflate segment of each gzip copy; the files are part
// lists (cache.File.Index) of their segments between a small header and
// trailer. A serial re-encodes only the chunks whose objects changed, and
// the .bin segments holding the start (length) or the end (pin) of a group
// that changed; the other segments are those of the previous serial, the
// same blobs, shared with it in memory and in every tier. The files are
// byte for byte those regenerate writes for the same objects; the gzip
// copies are one gzip member whose deflate stream is the segments' streams
// joined (each ends with a sync flush, the last block is an empty final
// one), with the CRC-32 of the whole file. Its work is the changed chunks
// plus one pass over the new files for their SHA-256 and CRC-32.
const (
	// chunkMask makes an object end its chunk when the FNV-1a hash of its
	// URI has these bits zero: 64 objects per chunk on average (about
	// 140 KB of XML with paper-1ca's objects), so that the part lists of a
	// large repository stay near 6,000 parts per file (250 KB), and a
	// chunk is cheap to encode again. It was 128: a serial of 10 objects
	// on paper-1ca then built about a fifth of the state again, which
	// stayed beside the old until the head changed; with 64, RSS in the
	// soak went from 141.6 to 127.7 MiB at 2 minutes, the child's CPU per
	// serial from 0.230 to 0.190 s and the state directory grew by 317
	// instead of 733 MB in the first minute (docs/bench/state.md, "Smaller
	// chunks"). Changing it changes no file's plain bytes (hashes, URIs),
	// only the gzip copies' deflate segments. A node restarted on a state
	// of 128-object chunks serves it as stored (the bench's restart, origin
	// down: served in 0.21 s) and, by plan, encodes its chunks again at its
	// next serial (no test crosses the two sizes).
	chunkMask = 63
	// chunkMax ends a chunk after so many objects whatever the hashes.
	chunkMax = 1024
)

// segment is a blob to store: its SHA-256 and its bytes.
type segment struct {
	sum [32]byte
	b   []byte
}

// piece is a segment of a composite snapshot as a follower keeps it: its
// SHA-256, its size and its bytes, which are nil when the store alone has
// them (a cold serial: composite, segStore) and are then read from it.
type piece struct {
	sum [32]byte
	n   int64
	b   []byte
}

func pieceOf(s segment) piece { return piece{s.sum, int64(len(s.b)), s.b} }

// bare is p without its bytes.
func (p piece) bare() piece { return piece{sum: p.sum, n: p.n} }

// partSegment reads the blob part p of a stored composite file with get,
// checked against the size its part list gives (the getter checks the
// content against the key).
func partSegment(ctx context.Context, get cache.Getter, p cache.Part) (segment, error) {
	b, err := get(ctx, p.Sum)
	if err != nil {
		return segment{}, err
	}
	if int64(len(b)) != p.Size {
		return segment{}, fmt.Errorf("part %x: %d bytes, its list says %d", p.Sum[:8], len(b), p.Size)
	}
	return segment{p.Sum, b}, nil
}

// fragments are the segments of the current composite snapshot of a
// follower, by key, and its groups, by directory URI: what the next serial
// reuses. A new serial builds new maps; the follower's goroutine alone
// uses them, and release drops their bytes once the store holds them.
type fragments struct {
	xs, bs string // the sessions they were made for
	// binOnly: the .bin segments alone, for a transparent follower,
	// which serves the origin's XML (composite without an XML session).
	binOnly       bool
	built, reused int // chunks encoded and taken over
	// builtBytes is the size of the segments encoded (every format).
	builtBytes int64
	// realias lists, for the chunks built, the objects and their
	// contents within the new .bin segments (see Realias).
	realias            []aliased
	xml, bin, xgz, bgz map[[32]byte]piece
	groups             map[string]groupSum
	// cold: the segments built went to the store alone (segStore); the
	// objects' new contents are read back after the switch (load).
	cold bool
}

// aliased is an object's content within a .bin segment: content, or, for
// a segment the follower does not hold (cold), where it is in the
// segment sum (load reads it).
type aliased struct {
	uri     string
	content []byte
	sum     [32]byte
	off, n  int32
}

// alias records, for Realias, the contents of c's objects within its
// .bin segment, at offs.
func (fr *fragments) alias(c *chunk, offs []int32, order []string, objs func(string) object) {
	for j, uri := range order[c.lo:c.hi] {
		n := int32(len(objs(uri).content))
		if c.bin.b == nil {
			fr.realias = append(fr.realias, aliased{uri: uri, sum: c.bin.sum, off: offs[j], n: n})
			continue
		}
		fr.realias = append(fr.realias, aliased{uri: uri, content: c.bin.b[offs[j] : offs[j]+n : offs[j]+n]})
	}
}

// load reads, with get, the .bin segments holding the contents Realias
// will give the objects of a cold serial, once its head is in place and
// the store pins them in memory. A segment get cannot give is skipped:
// its objects keep the contents they have, which are their current bytes
// (lastOnly dropped every older entry).
func (fr *fragments) load(ctx context.Context, get cache.Getter) error {
	var seg []byte
	var at [32]byte
	var failed, bad int
	var first error
	for i := range fr.realias {
		a := &fr.realias[i]
		if a.content != nil || a.sum == ([32]byte{}) {
			continue
		}
		if at != a.sum {
			at, seg = a.sum, nil
			b, err := get(ctx, a.sum)
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
			} else {
				seg = b
			}
		}
		if seg == nil {
			continue // this segment failed: its objects stay
		}
		if int(a.off)+int(a.n) > len(seg) {
			bad++
			if first == nil {
				first = fmt.Errorf("realias %s: %d bytes at %d, past its segment of %d", a.uri, a.n, a.off, len(seg))
			}
			continue
		}
		a.content = seg[a.off : a.off+a.n : a.off+a.n]
	}
	if first != nil {
		return fmt.Errorf("read back the objects of %d segments (%d entries out of range): %w", failed, bad, first)
	}
	return nil
}

// lastOnly keeps, of the realias entries of the fragments of one sync in
// serial order, each object's entry in the last fragments that have one:
// that is its content at the sync's serial. An older entry applied, or
// left in place when a newer one cannot be read, would give the object an
// older serial's bytes under its current hash.
func lastOnly(frs []*fragments) {
	if len(frs) < 2 {
		return
	}
	last := make(map[string]int)
	for i, fr := range frs {
		for _, a := range fr.realias {
			last[a.uri] = i
		}
	}
	for i, fr := range frs {
		fr.realias = slices.DeleteFunc(fr.realias, func(a aliased) bool { return last[a.uri] != i })
	}
}

// Realias makes the objects of the chunks built share their contents with
// the new .bin segments (set replaces one object's content with the same
// bytes there), so that the follower's object set costs no memory beyond
// the served files, and an older segment is not kept alive by objects
// that moved to a new one. The caller runs it where the object set may be
// written (under the follower's lock for the current state). The objects
// of a cold serial's segments not read back yet (load) are kept for a
// second call.
func (fr *fragments) Realias(set func(uri string, content []byte)) {
	var cold []aliased
	for _, a := range fr.realias {
		switch {
		case a.content != nil:
			set(a.uri, a.content)
		case a.sum != [32]byte{} && a.n > 0:
			cold = append(cold, a)
		}
	}
	fr.realias = cold
}

// groupSum is what a group's segments depend on: the hash of its objects'
// URIs and hashes (id), the size of its entries and its pin.
type groupSum struct {
	id      [32]byte
	entries int64
	pin     [32]byte
}

// chunk is the objects order[lo:hi] and the keys of its segments.
type chunk struct {
	lo, hi     int
	xkey, bkey [32]byte
	xml, bin   piece
	xgz, bgz   piece
	build      bool // no segment of the previous serial to reuse
	aliased    bool // its objects were realiased as it was built
	// offs are, for a chunk built, where each object's content starts in
	// the .bin segment (Realias).
	offs []int32
}

// group is the objects order[lo:hi] of one directory.
type group struct {
	dir    string
	lo, hi int
	groupSum
}

// canonicalCompare orders object URIs as canonical snapshots list them:
// by group (directory URI), then by name within the group, so that a
// group's objects are contiguous in the XML as in the .bin.
func canonicalCompare(a, b string) int {
	da, na := irpki.SplitURI(a)
	db, nb := irpki.SplitURI(b)
	if c := strings.Compare(da, db); c != 0 {
		return c
	}
	return strings.Compare(na, nb)
}

// endsChunk reports whether the object uri, the nth of its chunk, ends
// it: FNV-1a (64 bits) of the URI, inline, since it runs for every object
// of every serial.
func endsChunk(uri string, n int) bool {
	if n >= chunkMax {
		return true
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(uri); i++ {
		h ^= uint64(uri[i])
		h *= 1099511628211
	}
	return h&chunkMask == 0
}

// composite writes the snapshot of objs in order at serial, XML under xs
// and .bin under bs, as composite files, reusing the segments of prev
// (nil: none). It returns the four files (XML, .bin and their gzip
// copies) with the blobs to store before them, and the fragments of the
// new snapshot. level is the gzip level. fresh says the objects were
// decoded afresh (the snapshot path), so that those of the chunks taken
// over from prev are realiased too, not only those of the chunks built.
//
// set, if not nil, realiases the objects of each chunk as soon as it is
// built (set replaces one object's content with the same bytes in the
// chunk's .bin segment), so that the decoded contents of a big snapshot
// become garbage chunk by chunk instead of living beside the whole new
// snapshot until the end: the peak of a first sync. set runs on the
// calling goroutine, never at the same time as objs; the objects it
// realiases are not left for Realias. Only for objects no one else reads
// (the snapshot path, before the state is shared).
//
// With no XML session (xs "") it makes the .bin alone, with its gzip
// copy. A transparent follower serves the origin's XML, and its .bin is
// made from the objects as the regenerating path makes it, so it is the
// same bytes for the same objects and session, whatever the origin's XML
// looks like and whichever path the node took (DESIGN.md, invariant 8),
// and a serial costs the chunks it changes.
func composite(order []string, objs func(string) object, xs, bs string, serial uint64, prev *fragments, level int, fresh bool, set func(uri string, content []byte), ss segStore) ([]blob, *fragments, error) {
	binOnly := xs == ""
	if prev != nil && (prev.xs != xs || prev.bs != bs || prev.binOnly != binOnly) {
		prev = nil // a segment does not name its session, but start afresh on a new one
	}
	chunks, groups, next := plan(order, objs, xs, bs, prev, binOnly, nil)
	build := 0
	for i := range chunks {
		if chunks[i].build {
			build++
		}
	}
	// Cold: the segments built go to the store as they are made and are
	// not kept (segStore). Not with set, whose objects move to the new
	// segments as they are built (a first snapshot, which has no old state
	// beside it).
	if ss.cold != nil && set == nil && build >= coldChunks {
		next.cold = true
	} else {
		ss.cold = nil
	}
	objAt := func(k int) object { return objs(order[k]) }
	var realiased func(i int)
	if set != nil {
		// The workers read the objects from vals, which set's writes do
		// not touch: set may write the caller's map while they run.
		vals := make([]object, len(order))
		for k, uri := range order {
			vals[k] = objs(uri)
		}
		objAt = func(k int) object { return vals[k] }
		realiased = func(i int) {
			c := &chunks[i]
			if len(c.offs) != c.hi-c.lo {
				return // not built: the error is returned
			}
			for j, k := 0, c.lo; k < c.hi; j, k = j+1, k+1 {
				n := int32(len(vals[k].content))
				content := c.bin.b[c.offs[j] : c.offs[j]+n : c.offs[j]+n]
				set(order[k], content)
				vals[k].content = content
			}
			c.offs, c.aliased = nil, true
		}
	}

	// The files' SHA-256 and CRC-32, over the chunks in order as they are
	// built: a cold chunk's bytes are released once hashed.
	bstart := irpki.AppendSnapshotHead(nil, bs, serial)
	bend := irpki.AppendSnapshotTrailer(nil)
	var xstart []byte
	if !binOnly {
		var err error
		if xstart, err = rrdpxml.AppendSnapshotStart(nil, xs, serial); err != nil {
			return nil, nil, fmt.Errorf("snapshot %d: %w", serial, err)
		}
	}
	xh, bh := newFileHasher(!binOnly), newFileHasher(true)
	xh.write(xstart, false)
	bh.write(bstart, false)
	ready := make([]bool, len(chunks))
	cursor := 0
	var ferr error
	feed := func() {
		for ferr == nil && cursor < len(chunks) {
			c := &chunks[cursor]
			if c.build && !ready[cursor] {
				return
			}
			var x, b []byte
			if !binOnly {
				if x, ferr = ss.bytes(c.xml); ferr != nil {
					return
				}
			}
			if b, ferr = ss.bytes(c.bin); ferr != nil {
				return
			}
			release := c.build && next.cold
			xh.write(x, release)
			bh.write(b, release)
			cursor++
		}
	}
	feed() // the chunks before the first one to build
	err := buildChunks(chunks, groups, order, objAt, level, func(i int) {
		ready[i] = true
		if realiased != nil {
			realiased(i)
		}
		feed()
	}, binOnly, ss)
	if err == nil {
		feed()
	}
	xh.write([]byte(rrdpxml.SnapshotEnd), false)
	bh.write(bend, false)
	xsum, bsum := xh.close(), bh.close()
	if err == nil && ferr != nil {
		err = fmt.Errorf("snapshot %d: read a segment: %w", serial, ferr)
	}
	if err == nil && cursor != len(chunks) {
		err = fmt.Errorf("snapshot %d: %d of %d chunks hashed", serial, cursor, len(chunks))
	}
	if err != nil {
		return nil, nil, err
	}

	var stored []segment
	seen := make(map[[32]byte]bool)
	for i := range chunks {
		c := &chunks[i]
		if c.build && !next.cold {
			for _, s := range []piece{c.xml, c.bin, c.xgz, c.bgz} {
				if s.b != nil && !seen[s.sum] { // nil: binOnly, no XML
					seen[s.sum] = true
					stored = append(stored, segment{s.sum, s.b})
				}
			}
		}
		if next.cold {
			// Stored and released as built; the chunks taken over are
			// read from the store too (release).
			c.xml, c.bin, c.xgz, c.bgz = c.xml.bare(), c.bin.bare(), c.xgz.bare(), c.bgz.bare()
		}
		if !binOnly {
			next.xml[c.xkey], next.xgz[c.xkey] = c.xml, c.xgz
		}
		next.bin[c.bkey], next.bgz[c.bkey] = c.bin, c.bgz
		if !c.build {
			next.reused++
			if fresh {
				// Objects decoded afresh (a snapshot taken again):
				// their contents move to the segments kept, too, read
				// from the store when the fragments hold no bytes
				// (release; the current head pins them). One it cannot
				// give keeps the decoded copies.
				if b, err := ss.bytes(c.bin); err == nil && b != nil {
					kept := *c
					kept.bin.b = b
					offs, _, _ := layout(c, groups, order, objs)
					next.alias(&kept, offs, order, objs)
				}
			}
			continue
		}
		next.built++
		next.builtBytes += c.xml.n + c.bin.n + c.xgz.n + c.bgz.n
		if !c.aliased {
			next.alias(c, c.offs, order, objs)
			c.offs = nil
		}
	}

	if binOnly {
		bf, bz := assemble(chunks, func(c *chunk) piece { return c.bin }, func(c *chunk) piece { return c.bgz },
			bstart, bend, bsum, irpki.FormatBin, bs, serial)
		bf.parts = append(stored, bf.parts...)
		return []blob{bf, bz}, next, nil
	}
	xf, xz := assemble(chunks, func(c *chunk) piece { return c.xml }, func(c *chunk) piece { return c.xgz },
		xstart, []byte(rrdpxml.SnapshotEnd), xsum, irpki.FormatXML, xs, serial)
	bf, bz := assemble(chunks, func(c *chunk) piece { return c.bin }, func(c *chunk) piece { return c.bgz },
		bstart, bend, bsum, irpki.FormatBin, bs, serial)
	// The segments go to the first file's list: they are stored once,
	// before the head, like its part lists.
	xf.parts = append(stored, xf.parts...)
	return []blob{xf, bf, xz, bz}, next, nil
}

// plan cuts order into chunks and groups, computes the pins of the groups
// that changed since prev and the keys of every chunk's segments, and
// takes over the segments prev has for them; the chunks left to encode
// are marked build. next holds the groups; its segment maps are empty.
// pins, if not nil, are the pins of a stored snapshot of these very
// objects, taken for the groups prev does not have (resume, which checks
// that the snapshot is their canonical encoding).
func plan(order []string, objs func(string) object, xs, bs string, prev *fragments, binOnly bool, pins map[string][32]byte) ([]chunk, []group, *fragments) {
	chunks, groups := cut(order, objs)
	next := &fragments{xs: xs, bs: bs, binOnly: binOnly, xml: make(map[[32]byte]piece, len(chunks)), bin: make(map[[32]byte]piece, len(chunks)),
		xgz: make(map[[32]byte]piece, len(chunks)), bgz: make(map[[32]byte]piece, len(chunks)), groups: make(map[string]groupSum, len(groups))}
	// Pins of the groups that changed.
	gi := 0
	for i := range groups {
		g := &groups[i]
		if p, ok := prev.group(g.dir); ok && p.id == g.id {
			g.pin = p.pin
		} else if p, ok := pins[g.dir]; ok {
			g.pin = p
		} else {
			g.pin = pinOf(g, order, objs)
		}
		next.groups[g.dir] = g.groupSum
	}
	// Keys of the .bin segments: the chunk's objects, and the groups
	// whose start (length) or end (pin) falls in the chunk.
	for i := range chunks {
		c := &chunks[i]
		h := sha256.New()
		h.Write(c.xkey[:])
		for gi < len(groups) && groups[gi].hi <= c.lo {
			gi++
		}
		for j := gi; j < len(groups) && groups[j].lo < c.hi; j++ {
			g := &groups[j]
			if g.lo >= c.lo {
				h.Write([]byte{'s'})
				h.Write(g.id[:])
			}
			if g.hi <= c.hi {
				h.Write([]byte{'e'})
				h.Write(g.id[:])
			}
		}
		h.Sum(c.bkey[:0])
		c.build = !prev.take(c)
	}
	return chunks, groups, next
}

func (fr *fragments) group(dir string) (groupSum, bool) {
	if fr == nil {
		return groupSum{}, false
	}
	g, ok := fr.groups[dir]
	return g, ok
}

// take gives c the segments fr has for its keys, if it has all four (the
// two .bin ones when fr is binOnly).
func (fr *fragments) take(c *chunk) bool {
	if fr == nil {
		return false
	}
	x, okx := fr.xml[c.xkey]
	xz, okxz := fr.xgz[c.xkey]
	b, okb := fr.bin[c.bkey]
	bz, okbz := fr.bgz[c.bkey]
	if fr.binOnly {
		okx, okxz = true, true
	}
	if okx && okxz && okb && okbz {
		c.xml, c.xgz, c.bin, c.bgz = x, xz, b, bz
		return true
	}
	return false
}

// cut cuts order into chunks and groups, with the keys that depend on
// their objects alone: the chunks' XML keys and the groups' ids and entry
// sizes.
func cut(order []string, objs func(string) object) ([]chunk, []group) {
	var chunks []chunk
	var groups []group
	ch, gh := sha256.New(), sha256.New()
	scratch := make([]byte, 0, 256)
	lo, n := 0, 0
	var g *group
	endGroup := func(hi int) {
		if g != nil {
			g.hi = hi
			gh.Sum(g.id[:0])
			gh.Reset()
		}
	}
	for i, uri := range order {
		o := objs(uri)
		dir, name := irpki.SplitURI(uri)
		if g == nil || g.dir != dir {
			endGroup(i)
			groups = append(groups, group{dir: dir, lo: i})
			g = &groups[len(groups)-1]
		}
		g.entries += int64(irpki.SnapshotEntrySize(name, o.content))
		scratch = append(append(scratch[:0], uri...), o.hash[:]...)
		gh.Write(scratch)
		ch.Write(scratch)
		n++
		if endsChunk(uri, n) || i == len(order)-1 {
			c := chunk{lo: lo, hi: i + 1}
			ch.Sum(c.xkey[:0])
			ch.Reset()
			chunks = append(chunks, c)
			lo, n = i+1, 0
		}
	}
	endGroup(len(order))
	return chunks, groups
}

// pinOf computes the pin of g: the SHA-256 of its repo field and entries.
func pinOf(g *group, order []string, objs func(string) object) [32]byte {
	h := sha256.New()
	h.Write(irpki.AppendRepoField(nil, g.dir))
	var scratch []byte
	for _, uri := range order[g.lo:g.hi] {
		o := objs(uri)
		_, name := irpki.SplitURI(uri)
		scratch = irpki.AppendSnapshotEntryHead(scratch[:0], name, len(o.content))
		h.Write(scratch)
		h.Write(o.content)
	}
	var pin [32]byte
	h.Sum(pin[:0])
	return pin
}

// buildChunks encodes the chunks marked build, on every core, reading
// object k with objAt. done, if not nil, is called on the calling
// goroutine with the index of each chunk once it is built (or failed).
// binOnly leaves out the XML segments; ss.cold, if set, takes each
// segment as it is built (buildChunk).
func buildChunks(chunks []chunk, groups []group, order []string, objAt func(k int) object, level int, done func(i int), binOnly bool, ss segStore) error {
	todo, built := make(chan int), make(chan int)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			zx, err := getDeflater(level)
			if err != nil {
				errs[w] = err
			} else {
				defer putDeflater(zx)
			}
			for i := range todo {
				if errs[w] == nil {
					errs[w] = buildChunk(&chunks[i], groups, order, objAt, zx, binOnly, ss)
				}
				built <- i
			}
		})
	}
	var pending []int
	for i := range chunks {
		if chunks[i].build {
			pending = append(pending, i)
		}
	}
	for next, inflight := 0, 0; next < len(pending) || inflight > 0; {
		var send chan int
		var i int
		if next < len(pending) {
			send, i = todo, pending[next]
		}
		select {
		case send <- i:
			next++
			inflight++
		case j := <-built:
			inflight--
			if done != nil {
				done(j)
			}
		}
	}
	close(todo)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("build snapshot fragments: %w", err)
		}
	}
	return nil
}

// buildChunk encodes the segments of c (the .bin ones alone with
// binOnly). With ss.cold it puts them in the store as they are made: the
// gzip ones are then not kept, the plain ones are buffers of bufs, kept
// until the files are hashed (composite).
func buildChunk(c *chunk, groups []group, order []string, objAt func(k int) object, zd *deflater, binOnly bool, ss segStore) error {
	var xsize, bsize int
	for k := c.lo; k < c.hi; k++ {
		o, uri := objAt(k), order[k]
		_, name := irpki.SplitURI(uri)
		xsize += rrdpxml.PublishSize(uri, o.content)
		bsize += irpki.SnapshotEntrySize(name, o.content) + 64
	}
	alloc := func(n int) []byte { return make([]byte, 0, n) }
	if ss.cold != nil {
		alloc = getBuf
	}
	var x []byte
	if !binOnly {
		x = alloc(xsize)
	}
	b := alloc(bsize + len(groups[0].dir) + 64)
	// The group of the first object: groups are sorted by lo.
	gi := groupAt(groups, c.lo)
	for k := c.lo; k < c.hi; k++ {
		o, uri := objAt(k), order[k]
		for groups[gi].hi <= k {
			gi++
		}
		g := &groups[gi]
		_, name := irpki.SplitURI(uri)
		if !binOnly {
			x = rrdpxml.AppendPublish(x, uri, o.content)
		}
		if k == g.lo {
			b = irpki.AppendGroupStart(b, g.dir, g.entries)
		}
		b = irpki.AppendSnapshotEntry(b, name, o.content)
		c.offs = append(c.offs, int32(len(b)-len(o.content)))
		if k == g.hi-1 {
			b = irpki.AppendPin(b, g.pin)
		}
	}
	// put stores p when cold, and returns it without its bytes when they
	// are not to be kept (gzip: the deflater's buffer).
	put := func(p piece, keep bool) (piece, error) {
		if ss.cold == nil {
			return p, nil
		}
		if err := ss.cold(ss.ctx, p.sum, p.b); err != nil {
			return piece{}, fmt.Errorf("store a segment: %w", err)
		}
		if keep {
			return p, nil
		}
		return p.bare(), nil
	}
	var err error
	if c.bin, err = put(piece{sha256.Sum256(b), int64(len(b)), b}, true); err != nil {
		return err
	}
	if !binOnly {
		if c.xml, err = put(piece{sha256.Sum256(x), int64(len(x)), x}, true); err != nil {
			return err
		}
		z, err := zd.compress(x, ss.cold == nil)
		if err != nil {
			return err
		}
		if c.xgz, err = put(z, false); err != nil {
			return err
		}
	}
	z, err := zd.compress(b, ss.cold == nil)
	if err != nil {
		return err
	}
	c.bgz, err = put(z, false)
	return err
}

// groupAt returns the index of the group holding object k.
func groupAt(groups []group, k int) int {
	lo, hi := 0, len(groups)
	for lo < hi {
		m := (lo + hi) / 2
		if groups[m].hi <= k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// deflater compresses segments with one writer and one buffer, reused.
type deflater struct {
	zw    *flate.Writer
	buf   bytes.Buffer
	level int
}

// deflaters keeps the deflaters of past serials: a writer's state is about
// a megabyte, which a serial a second allocated twice (one per worker).
var deflaters sync.Pool

// getDeflater returns a deflater at level, from deflaters if one is there.
func getDeflater(level int) (*deflater, error) {
	if d, ok := deflaters.Get().(*deflater); ok && d.level == level {
		return d, nil
	}
	zw, err := flate.NewWriter(nil, level)
	if err != nil {
		return nil, err
	}
	return &deflater{zw: zw, level: level}, nil
}

// putDeflater gives d back to deflaters, unless its buffer grew past what
// a chunk takes (a chunk of chunkMax large objects): the pool is not to
// keep a big buffer alive.
func putDeflater(d *deflater) {
	if d.buf.Cap() > 4<<20 {
		return
	}
	d.buf.Reset()
	deflaters.Put(d)
}

// segment compresses p as raw deflate blocks ending with a sync flush,
// byte-aligned and not final, so that segments can be joined. The
// segment is a copy of exactly its size: it is pinned for as long as the
// chunk does not change.
func (d *deflater) segment(p []byte) (segment, error) {
	z, err := d.compress(p, true)
	return segment{z.sum, z.b}, err
}

// compress is segment as a piece. With keep, its bytes are a copy;
// without, they are d's buffer, valid until the next call.
func (d *deflater) compress(p []byte, keep bool) (piece, error) {
	d.buf.Reset()
	d.zw.Reset(&d.buf)
	if _, err := d.zw.Write(p); err != nil {
		return piece{}, err
	}
	if err := d.zw.Flush(); err != nil {
		return piece{}, err
	}
	z := d.buf.Bytes()
	if keep {
		z = bytes.Clone(z)
	}
	return piece{sha256.Sum256(z), int64(len(z)), z}, nil
}

// gzipHeader is a gzip member header without name, time or flags (RFC
// 1952), as on every node.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// storedBlock appends p as a stored deflate block (RFC 1951, 3.2.4),
// final or not; the output before it is byte-aligned.
func storedBlock(b, p []byte, final bool) []byte {
	for {
		n := min(len(p), 0xffff)
		last := n == len(p)
		var bfinal byte
		if final && last {
			bfinal = 1
		}
		b = append(b, bfinal)
		b = binary.LittleEndian.AppendUint16(b, uint16(n))
		b = binary.LittleEndian.AppendUint16(b, ^uint16(n))
		b = append(b, p[:n]...)
		p = p[n:]
		if last {
			return b
		}
	}
}

// assemble makes the composite file of one format from the chunks'
// segments between start and end, and its gzip copy, given the file's
// SHA-256, CRC-32 and size (fs, from composite's hashers).
func assemble(chunks []chunk, plain, gz func(*chunk) piece, start, end []byte, fs fileSum, format irpki.Format, session string, serial uint64) (file, gzipped blob) {
	parts := make([]cache.Part, 0, len(chunks)+2)
	zparts := make([]cache.Part, 0, len(chunks)+2)
	var zsize int64
	parts = append(parts, cache.Part{Data: start, Size: int64(len(start))})
	zstart := storedBlock(append([]byte(nil), gzipHeader...), start, false)
	zparts = append(zparts, cache.Part{Data: zstart, Size: int64(len(zstart))})
	zsize += int64(len(zstart))
	for i := range chunks {
		s, z := plain(&chunks[i]), gz(&chunks[i])
		parts = append(parts, cache.Part{Sum: s.sum, Size: s.n})
		zparts = append(zparts, cache.Part{Sum: z.sum, Size: z.n})
		zsize += z.n
	}
	parts = append(parts, cache.Part{Data: end, Size: int64(len(end))})
	zend := storedBlock(nil, end, true)
	zend = binary.LittleEndian.AppendUint32(zend, fs.crc)
	zend = binary.LittleEndian.AppendUint32(zend, uint32(fs.size))
	zparts = append(zparts, cache.Part{Data: zend, Size: int64(len(zend))})
	zsize += int64(len(zend))

	list, zlist := cache.EncodeParts(parts), cache.EncodeParts(zparts)
	lsum, zlsum := sha256.Sum256(list), sha256.Sum256(zlist)
	fl := File{Path: irpki.FilePath(rrdpxml.KindSnapshot, format, session, serial, fs.sum), Sum: fs.sum, Size: fs.size,
		Format: format, Kind: rrdpxml.KindSnapshot, Serial: serial, Index: lsum}
	zf := fl
	zf.Sum, zf.Size, zf.Gzip, zf.Index = zlsum, zsize, true, zlsum
	return blob{File: fl, parts: []segment{{lsum, list}}}, blob{File: zf, parts: []segment{{zlsum, zlist}}}
}
