package follow

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// withGzip returns bs followed by their gzip copies, in the same order.
// The copies are compressed in parallel. The gzip header carries no name
// and no time, so the same bytes give the same copy on every node that
// uses the same level.
func (f *Follower) withGzip(bs ...blob) ([]blob, error) {
	out := make([]blob, 2*len(bs))
	errs := make([]error, len(bs))
	copy(out, bs)
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Go(func() { out[len(bs)+i], errs[i] = gzipBlob(b, f.cfg.GzipLevel) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gzipBlob returns the gzip copy of b: the same File, Gzip set, with the
// sum and size of the compressed bytes.
func gzipBlob(b blob, level int) (blob, error) {
	var buf bytes.Buffer
	buf.Grow(len(b.b)/2 + 4096) // RPKI objects compress to about 45%
	w, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return blob{}, fmt.Errorf("gzip %s: %w", b.Path, err)
	}
	if _, err := w.Write(b.b); err != nil {
		return blob{}, fmt.Errorf("gzip %s: %w", b.Path, err)
	}
	if err := w.Close(); err != nil {
		return blob{}, fmt.Errorf("gzip %s: %w", b.Path, err)
	}
	g := buf.Bytes()
	fl := b.File
	fl.Sum, fl.Size, fl.Gzip = sha256.Sum256(g), int64(len(g)), true
	return blob{File: fl, b: g}, nil
}
