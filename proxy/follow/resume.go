package follow

import (
	"bytes"
	"context"
	"fmt"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// resume rebuilds the fragments of a stored composite snapshot, so that a
// restarted follower's next serial encodes only what changed, like the
// serials before the restart: the chunks of its objects (in order) are
// cut again, and their segments are the stored files' parts, in the same
// order, read with get (the pinned blobs of the current head, no copy).
// snap are the snapshot's XML, .bin, XML gzip and .bin gzip files. Every
// segment is checked against the chunk it stands for (its count, the
// sizes of the plain ones, and each object's bytes at its place in the
// .bin segment: a pointer comparison for the objects read as views into
// it); a snapshot cut otherwise (another version's chunking) is an error,
// and the next serial builds every chunk. With
// binOnly (a transparent follower's, composite without XML) only the .bin files
// are read; the XML ones are not the follower's chunks.
//
// sv, if not nil, is how the objects were read (readSnapshotViews): the
// .bin segments are its slices, and its groups' pins are taken instead of
// computed again (a SHA-256 pass over every object) once every object is
// found in place. That is sound: every object's content at the offset
// where the canonical layout puts it, in the segment the reader read, and
// every segment of the size that layout gives, leave no room for another
// encoding of a group (an extra field or a longer varint would shift what
// follows), so the bytes under each pin the reader checked are the
// canonical encoding of the group's objects. Else the resume fails.
func resume(ctx context.Context, order []string, objs func(string) object, xs, bs string, snap [4]*File, get func(context.Context, [32]byte) ([]byte, error), binOnly bool, sv *snapshotViews) (*fragments, error) {
	if binOnly {
		xs = ""
	}
	var pins map[string][32]byte
	if sv != nil {
		if !sv.canonical {
			return nil, fmt.Errorf("resume fragments: the stored snapshot is not in the canonical order")
		}
		pins = sv.pins
	}
	chunks, groups, next := plan(order, objs, xs, bs, nil, binOnly, pins)
	var lists [4][]cache.Part
	for i, f := range snap {
		if binOnly && i%2 == 0 {
			continue
		}
		if f == nil || !f.Composite() {
			return nil, fmt.Errorf("resume fragments: the snapshot is not stored as fragments")
		}
		parts, err := cache.FileParts(ctx, f, get)
		if err != nil {
			return nil, fmt.Errorf("resume fragments: %w", err)
		}
		if len(parts) != len(chunks)+2 {
			return nil, fmt.Errorf("resume fragments: %s has %d parts, the objects make %d chunks", f.Path, len(parts), len(chunks))
		}
		lists[i] = parts[1 : len(parts)-1]
	}
	seg := func(p cache.Part) (piece, error) {
		if sv != nil {
			if b, ok := sv.blobs[p.Sum]; ok {
				return piece{p.Sum, int64(len(b)), b}, nil // checked against its list as read
			}
		}
		s, err := partSegment(ctx, get, p)
		return pieceOf(s), err
	}
	for i := range chunks {
		c := &chunks[i]
		var err error
		for j, dst := range []*piece{&c.xml, &c.bin, &c.xgz, &c.bgz} {
			if binOnly && j%2 == 0 {
				continue
			}
			if *dst, err = seg(lists[j][i]); err != nil {
				return nil, fmt.Errorf("resume fragments: chunk %d: %w", i, err)
			}
		}
		c.build = false
		// The plain segments' sizes are those of the chunk's objects, and
		// the objects' contents sit where the .bin layout puts them.
		offs, xsize, bsize := layout(c, groups, order, objs)
		if !binOnly && xsize != len(c.xml.b) || bsize != len(c.bin.b) {
			return nil, fmt.Errorf("resume fragments: chunk %d: segments of %d and %d bytes, its objects make %d and %d", i, len(c.xml.b), len(c.bin.b), xsize, bsize)
		}
		// Objects read as views into these segments (readSnapshotViews)
		// are in place already; the others move to them, if the bytes
		// there are theirs: a segment of the right size may still hold
		// other objects (a snapshot not in canonical order).
		for j, uri := range order[c.lo:c.hi] {
			o := objs(uri)
			n := int32(len(o.content))
			at := c.bin.b[offs[j] : offs[j]+n : offs[j]+n]
			if n == 0 || &o.content[0] == &at[0] {
				continue
			}
			if pins != nil || !bytes.Equal(o.content, at) {
				return nil, fmt.Errorf("resume fragments: chunk %d: %s is not where the canonical layout puts it", i, uri)
			}
			next.realias = append(next.realias, aliased{uri: uri, content: at})
		}
		if !binOnly {
			next.xml[c.xkey], next.xgz[c.xkey] = c.xml, c.xgz
		}
		next.bin[c.bkey], next.bgz[c.bkey] = c.bin, c.bgz
	}
	next.reused = len(chunks)
	return next, nil
}

// layout computes, for chunk c, where each object's content starts in its
// .bin segment, and the sizes of its XML and .bin segments, as
// buildChunk writes them.
func layout(c *chunk, groups []group, order []string, objs func(string) object) (offs []int32, xsize, bsize int) {
	offs = make([]int32, 0, c.hi-c.lo)
	g := groupAt(groups, c.lo)
	for k := c.lo; k < c.hi; k++ {
		uri := order[k]
		o := objs(uri)
		for groups[g].hi <= k {
			g++
		}
		_, name := irpki.SplitURI(uri)
		xsize += rrdpxml.PublishSize(uri, o.content)
		if k == groups[g].lo {
			bsize += len(irpki.AppendGroupStart(nil, groups[g].dir, groups[g].entries))
		}
		bsize += len(irpki.AppendSnapshotEntryHead(nil, name, len(o.content)))
		offs = append(offs, int32(bsize))
		bsize += len(o.content)
		if k == groups[g].hi-1 {
			bsize += len(irpki.AppendPin(nil, groups[g].pin))
		}
	}
	return offs, xsize, bsize
}
