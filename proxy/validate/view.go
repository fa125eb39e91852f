package validate

import (
	"context"
	"fmt"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
)

// The objects of a composite snapshot.bin (the follower's fragments,
// cache.File.Index) are views into its parts, the .bin segments the cache
// pins as the served state, not copies: the Validator's state then costs
// its maps and hashes, not a second copy of the repository (on large,
// 70-71 MiB in a heap profile after the first validation, against 680-699
// MiB with copies; docs/validation.md, "Memory"). A part is read with Config.Open as a
// file of one blob (its sum and size), which cache.ReadFile answers with
// the cache's own slice. Every object that does not lie whole within one
// blob part (TestViews finds none: a chunk's objects are in its segment),
// those of a snapshot that is one blob (below
// follow.Config.FragmentMin: small, and a view would keep every old
// snapshot whole) and those read from deltas or XML are copied.
//
// A view keeps its segment alive after the cache let go of it: a state
// read from deltas keeps the segments of the groups it did not change,
// some of which the follower re-encoded since (a chunk changes as a
// whole). Their bytes and those copied from deltas are counted (stale);
// past staleLimit of the snapshot's size the next load reads the snapshot
// again, which takes every object afresh from the current segments.

// maxStaleDiv bounds the stale bytes of a state read from deltas: past
// 1/maxStaleDiv of the snapshot's size (and minStale), the snapshot is read
// again. On large (a snapshot.bin of 593 MB, read in 1.3 to 1.5 s) that
// is 74 MB.
const (
	maxStaleDiv = 8
	minStale    = 4 << 20
)

// staleLimit is the most stale bytes a state read from deltas may hold
// for a snapshot of size bytes.
func staleLimit(size int64) int64 { return max(size/maxStaleDiv, minStale) }

// part is one blob of a composite file, as the views of a group name it.
type part struct {
	sum  [32]byte
	size int64
}

// fileParts are the parts of a composite file, held in memory, and the
// set of their sums.
type fileParts struct {
	*cache.Views
	sums map[[32]byte]bool
}

// blob returns the blob sum through Config.Open, checked against size.
func (v *Validator) blob(ctx context.Context, path string, sum [32]byte, size int64) ([]byte, error) {
	b, err := v.cfg.Open(ctx, follow.File{Path: path, Sum: sum, Size: size})
	if err != nil {
		return nil, err
	}
	if size >= 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("blob %x of %s has %d bytes, the part list says %d", sum[:8], path, len(b), size)
	}
	return b, nil
}

// partList returns the parts of the composite file f (their sums and
// sizes), without their bytes.
func (v *Validator) partList(ctx context.Context, f follow.File) ([]cache.Part, error) {
	b, err := v.blob(ctx, f.Path, f.Index, -1)
	if err != nil {
		return nil, fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	parts, err := cache.DecodeParts(b)
	if err != nil {
		return nil, fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	var n int64
	for _, p := range parts {
		n += p.Size
	}
	if n != f.Size {
		return nil, fmt.Errorf("part list of %s: %d bytes, the head says %d", f.Path, n, f.Size)
	}
	return parts, nil
}

// openParts returns the parts of the composite file f with their bytes,
// each read with Config.Open as a file of one blob (which cache.ReadFile
// answers with the cache's own slice).
func (v *Validator) openParts(ctx context.Context, f follow.File) (*fileParts, error) {
	views, err := cache.OpenViews(ctx, &f, func(ctx context.Context, sum [32]byte) ([]byte, error) {
		return v.cfg.Open(ctx, follow.File{Path: f.Path, Sum: sum})
	})
	if err != nil {
		return nil, err
	}
	fp := &fileParts{Views: views, sums: make(map[[32]byte]bool, len(views.Parts()))}
	for _, p := range views.Parts() {
		if p.Sum != ([32]byte{}) {
			fp.sums[p.Sum] = true
		}
	}
	return fp, nil
}

// view returns the n bytes at off of the file as a slice of the blob part
// that holds them, capacity n, and that part; false when they are not
// within one blob part.
func (fp *fileParts) view(off int64, n int) ([]byte, part, bool) {
	b, i, ok := fp.View(off, n)
	if !ok {
		return nil, part{}, false
	}
	p := fp.Parts()[i]
	return b, part{p.Sum, p.Size}, true
}

// addPart adds p to the parts a group's views are in: parts come in file
// order, so a repeat is the last one.
func addPart(ps []part, p part) []part {
	if len(ps) > 0 && ps[len(ps)-1].sum == p.sum {
		return ps
	}
	return append(ps, p)
}

// current reports whether every part g views is in sums, the parts of the
// snapshot the state is read from.
func (g *group) current(sums map[[32]byte]bool) bool {
	for _, p := range g.parts {
		if !sums[p.sum] {
			return false
		}
	}
	return true
}

// staleBytes returns the bytes rs holds beyond the parts of the
// composite snapshot whose part sums are sums: the parts its views keep
// that the snapshot no longer has, and its copies.
func (rs *repoState) staleBytes(sums map[[32]byte]bool) int64 {
	var n int64
	seen := map[[32]byte]bool{}
	for _, g := range rs.groups {
		n += g.copied
		for _, p := range g.parts {
			if !sums[p.sum] && !seen[p.sum] {
				seen[p.sum] = true
				n += p.size
			}
		}
	}
	return n
}

// stale returns the stale bytes of rs, read from deltas up to h (see
// staleBytes), and the most it may hold before the snapshot is read
// again.
func (v *Validator) stale(ctx context.Context, rs *repoState, h *follow.Head) (stale, limit int64, err error) {
	f, ok := snapshotFile(h)
	if !ok {
		return 0, 0, fmt.Errorf("head of %s serial %d names no snapshot", h.Repo, h.Serial)
	}
	limit = v.staleLimit(f.Size)
	sums := map[[32]byte]bool{}
	if f.Format == irpki.FormatBin && f.Composite() {
		parts, err := v.partList(ctx, f)
		if err != nil {
			return 0, limit, err
		}
		for _, p := range parts {
			sums[p.Sum] = true
		}
	}
	return rs.staleBytes(sums), limit, nil
}
