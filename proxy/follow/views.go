package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"

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
	pv, err := cache.OpenViews(ctx, f, get)
	if err != nil {
		return nil, err
	}
	rd := irpki.NewReader(pv.Reader(), rrdpxml.KindSnapshot, lim)
	h, err := rd.Header()
	if err != nil {
		return nil, err
	}
	if h.SessionID != session || h.Serial != serial {
		return nil, fmt.Errorf("%w: snapshot of session %s serial %d, want session %s serial %d", ErrMismatch, h.SessionID, h.Serial, session, serial)
	}
	sv := &snapshotViews{objects: make(map[string]object), pins: make(map[string][32]byte), blobs: make(map[[32]byte][]byte, len(pv.Parts()))}
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
			c, _, ok := pv.View(en.Offset, len(en.Content))
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
	for i, p := range pv.Parts() {
		if p.Sum != ([32]byte{}) {
			sv.blobs[p.Sum] = pv.Blob(i)
		}
	}
	return sv, nil
}
