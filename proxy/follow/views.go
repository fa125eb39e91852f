package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// A restarted follower rebuilds its object set from the stored head's
// composite snapshot.bin (cache.File.Index) part by part, without
// assembling the file: the parts are read with Config.Blobs, which in a
// node answers with the cache's own slices (the pinned served state), and
// each object is a view into the .bin segment that holds it, where the
// follower keeps its objects' bytes anyway (fragments.Realias). The
// restart then costs the object set's maps, URIs and hashes beside the
// served state, not a copy of the .bin assembled plus a copy of every
// object (docs/bench/state.md, "A restart reads the stored snapshot part
// by part"). proxy/validate reads a composite snapshot the same way
// (view.go there). resume then finds every object in place in its
// segment and takes the groups' pins the reader checked, instead of a
// second SHA-256 pass over every object (resume says when that is sound).
//
// An object that does not lie whole within one blob part is copied: the
// follower's writer never makes one (a chunk's objects are in its
// segment), but the reader does not rely on it. A snapshot stored as one
// blob (below Config.FragmentMin) is read as before and its objects
// copied: its next serial is regenerated whole, and views would keep the
// old blob alive for as long as one of its objects does not change.

// partViews are the parts of a composite file with their bytes, and
// where each starts in the file.
type partViews struct {
	parts []cache.Part
	blobs [][]byte // each part's blob, or its inline data
	start []int64
}

// openPartViews returns the parts of the composite file f, their blobs
// read with get and checked against the sizes of the part list, whose
// sum must be f's size.
func openPartViews(ctx context.Context, f *File, get cache.Getter) (*partViews, error) {
	parts, err := cache.FileParts(ctx, f, get)
	if err != nil {
		return nil, err
	}
	pv := &partViews{parts: parts, blobs: make([][]byte, len(parts)), start: make([]int64, len(parts))}
	var off int64
	for i, p := range parts {
		pv.start[i] = off
		off += p.Size
		if p.Sum == ([32]byte{}) {
			pv.blobs[i] = p.Data
			continue
		}
		b, err := get(ctx, p.Sum)
		if err != nil {
			return nil, fmt.Errorf("part %d (%x) of %s: %w", i, p.Sum[:8], f.Path, err)
		}
		if int64(len(b)) != p.Size {
			return nil, fmt.Errorf("part %d (%x) of %s: %d bytes, its list says %d: %w", i, p.Sum[:8], f.Path, len(b), p.Size, cache.ErrParts)
		}
		pv.blobs[i] = b
	}
	if off != f.Size {
		return nil, fmt.Errorf("part list of %s: %d bytes, the head says %d: %w", f.Path, off, f.Size, cache.ErrParts)
	}
	return pv, nil
}

// reader returns a reader of the whole file: its parts one after the
// other, nothing assembled.
func (pv *partViews) reader() io.Reader {
	rs := make([]io.Reader, len(pv.blobs))
	for i, b := range pv.blobs {
		rs[i] = bytes.NewReader(b)
	}
	return io.MultiReader(rs...)
}

// view returns the n bytes at off of the file as a slice of the blob
// part that holds them, of capacity n (an append never writes into the
// segment), or false when they are not within one blob part.
func (pv *partViews) view(off int64, n int) ([]byte, bool) {
	i := sort.Search(len(pv.start), func(i int) bool { return pv.start[i] > off }) - 1
	if i < 0 || pv.parts[i].Sum == ([32]byte{}) {
		return nil, false
	}
	at := off - pv.start[i]
	if at < 0 || at+int64(n) > pv.parts[i].Size {
		return nil, false
	}
	return pv.blobs[i][at : at+int64(n) : at+int64(n)], true
}

// snapshotViews is an object set read from a stored composite
// snapshot.bin by readSnapshotViews.
type snapshotViews struct {
	objects map[string]object
	// order is the URIs in the order of the file, canonical for the
	// follower's own snapshots.
	order []string
	// copied counts the objects copied because they were not within one
	// blob part.
	copied int
	// canonical: the file lists its groups and objects in the follower's
	// own order. resume refuses a file that is not: its segments may hold
	// the same objects laid out otherwise (two objects of equal size and
	// name length swapped), which a comparison of bytes at offsets cannot
	// tell from the canonical layout.
	canonical bool
	// pins are the groups' pins the reader checked, by directory URI;
	// nil when the file is not in canonical order or an object was
	// copied. resume takes them instead of computing them again, once it
	// found every object in place (see there).
	pins map[string][32]byte
	// blobs are the blob parts read, by sum: resume finds the objects in
	// these very slices.
	blobs map[[32]byte][]byte
}

// readSnapshotViews decodes the composite snapshot.bin f of session and
// serial, read part by part with get, into a fresh object set whose
// contents are views into the parts. The file's SHA-256 and size are
// checked against f's as it is read, and every view against the bytes the
// reader checked against the group's pin.
func readSnapshotViews(ctx context.Context, f *File, session string, serial uint64, lim rrdpxml.Limits, get cache.Getter) (*snapshotViews, error) {
	pv, err := openPartViews(ctx, f, get)
	if err != nil {
		return nil, err
	}
	rd := irpki.NewReader(pv.reader(), rrdpxml.KindSnapshot, lim)
	h, err := rd.Header()
	if err != nil {
		return nil, err
	}
	if h.SessionID != session || h.Serial != serial {
		return nil, fmt.Errorf("%w: snapshot of session %s serial %d, want session %s serial %d", ErrMismatch, h.SessionID, h.Serial, session, serial)
	}
	sv := &snapshotViews{objects: make(map[string]object), pins: make(map[string][32]byte), blobs: make(map[[32]byte][]byte, len(pv.parts))}
	canonical := true
	for {
		g, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(g.Withdrawn) > 0 {
			return nil, fmt.Errorf("%w: snapshot group %s with withdraws", ErrMismatch, g.Repo)
		}
		if _, dup := sv.pins[g.Repo]; dup {
			canonical = false // a directory in two groups
		}
		sv.pins[g.Repo] = g.Pin
		for i := range g.Entries {
			en := &g.Entries[i]
			uri := g.Repo + en.Name
			if en.HasHash {
				return nil, fmt.Errorf("%w: snapshot element %s with withdraw or hash", ErrMismatch, uri)
			}
			if _, dup := sv.objects[uri]; dup {
				return nil, fmt.Errorf("snapshot: %s published twice", uri)
			}
			c, ok := pv.view(en.Offset, len(en.Content))
			switch {
			case !ok:
				c = bytes.Clone(en.Content)
				sv.copied++
			case !bytes.Equal(c, en.Content):
				// The reader's offsets and the part list disagree: a bug,
				// not a bad file (the bytes were checked by their keys).
				return nil, fmt.Errorf("snapshot %s: %s at byte %d: the part holds other bytes than the reader read", f.Path, uri, en.Offset)
			}
			sv.objects[uri] = object{hash: sha256.Sum256(c), content: c}
			sv.order = append(sv.order, uri)
		}
	}
	if rd.Size() != f.Size {
		return nil, fmt.Errorf("snapshot %s: %d bytes read, the head says %d: %w", f.Path, rd.Size(), f.Size, ErrHash)
	}
	if rd.Sum() != f.Sum {
		return nil, fmt.Errorf("snapshot %s: %w", f.Path, ErrHash)
	}
	if !slices.IsSortedFunc(sv.order, canonicalCompare) {
		slices.SortFunc(sv.order, canonicalCompare) // not our writer's order
		canonical = false
	}
	sv.canonical = canonical
	if !canonical || sv.copied > 0 {
		sv.pins = nil
	}
	for i, p := range pv.parts {
		if p.Sum != ([32]byte{}) {
			sv.blobs[p.Sum] = pv.blobs[i]
		}
	}
	return sv, nil
}
