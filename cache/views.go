package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
)

// Views are the parts of a composite file with their bytes, each blob as
// the getter returns it (from the cache, its own immutable slice: nothing
// is copied or assembled). A reader of a big snapshot reads it through
// Reader, part after part, and keeps its objects as slices of the parts
// (View): the restarted follower (proxy/follow views.go) and the validator
// (proxy/validate view.go), so that neither holds a second copy of the
// served state.
type Views struct {
	parts []Part
	blobs [][]byte // each part's blob, or its inline data
	start []int64  // where each part starts in the file
}

// OpenViews reads the parts of the composite file f with get, checked
// against the sizes of the part list, whose sum must be f's size (else an
// error wrapping ErrParts). The parts' contents are not hashed here: get
// answers for them (the cache checks every blob against its key), and a
// reader of the file checks its SHA-256 as it reads.
func OpenViews(ctx context.Context, f *File, get Getter) (*Views, error) {
	parts, err := FileParts(ctx, f, get)
	if err != nil {
		return nil, err
	}
	v := &Views{parts: parts, blobs: make([][]byte, len(parts)), start: make([]int64, len(parts))}
	var off int64
	for i, p := range parts {
		v.start[i] = off
		off += p.Size
		if p.Sum == ([32]byte{}) {
			v.blobs[i] = p.Data
			continue
		}
		b, err := get(ctx, p.Sum)
		if err != nil {
			return nil, fmt.Errorf("part %d (%x) of %s: %w", i, p.Sum[:8], f.Path, err)
		}
		if int64(len(b)) != p.Size {
			return nil, fmt.Errorf("part %d (%x) of %s: %d bytes, its list says %d: %w", i, p.Sum[:8], f.Path, len(b), p.Size, ErrParts)
		}
		v.blobs[i] = b
	}
	if off != f.Size {
		return nil, fmt.Errorf("part list of %s: %d bytes, the head says %d: %w", f.Path, off, f.Size, ErrParts)
	}
	return v, nil
}

// Parts returns the part list.
func (v *Views) Parts() []Part { return v.parts }

// Blob returns the bytes of part i: its blob, or its inline data.
func (v *Views) Blob(i int) []byte { return v.blobs[i] }

// Reader returns a reader of the whole file: its parts one after the
// other, nothing assembled.
func (v *Views) Reader() io.Reader {
	rs := make([]io.Reader, len(v.blobs))
	for i, b := range v.blobs {
		rs[i] = bytes.NewReader(b)
	}
	return io.MultiReader(rs...)
}

// View returns the n bytes at off of the file as a slice of the blob part
// that holds them, of capacity n (an append never writes into the part),
// and that part's index; false when they are not within one blob part
// (inline parts are not blobs: their data is the part list's).
func (v *Views) View(off int64, n int) ([]byte, int, bool) {
	i := sort.Search(len(v.start), func(i int) bool { return v.start[i] > off }) - 1
	if i < 0 || v.parts[i].Sum == ([32]byte{}) {
		return nil, 0, false
	}
	at := off - v.start[i]
	if at < 0 || at+int64(n) > v.parts[i].Size {
		return nil, 0, false
	}
	return v.blobs[i][at : at+int64(n) : at+int64(n)], i, true
}
