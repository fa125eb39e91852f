package proxy

import (
	"context"
	"io"
	"sync"

	"github.com/irpki/rrdp-proxy/cache"
)

// composite is the part list of a composite file (cache.File.Index),
// read from the cache once per index build, on the first request.
type composite struct {
	index [32]byte
	mu    sync.Mutex
	list  []cache.Part
}

// parts returns the part list, reading it with get the first time.
func (c *composite) parts(ctx context.Context, get cache.Getter) ([]cache.Part, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil {
		return c.list, nil
	}
	f := cache.File{Index: c.index}
	list, err := cache.FileParts(ctx, &f, get)
	if err != nil {
		return nil, err
	}
	c.list = list
	return list, nil
}

// partsReader reads n bytes of a composite file from offset off, part by
// part. fasthttp copies a body stream with WriteTo when the stream has
// one: each part's blob then goes to the connection's writer as it is.
type partsReader struct {
	ctx    context.Context
	get    cache.Getter
	parts  []cache.Part
	off, n int64
	cur    []byte
	// release, if set, ends the hold on a retained file's blobs
	// (cache.Cache.Hold); Close calls it.
	release func()
}

// Close ends the hold on the file's blobs. fasthttp calls it once the
// body is written or the response dropped.
func (r *partsReader) Close() error {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return nil
}

func (r *partsReader) WriteTo(w io.Writer) (int64, error) {
	if len(r.cur) > 0 {
		k, err := w.Write(r.cur)
		r.cur = r.cur[k:]
		if err != nil {
			return int64(k), err
		}
		m, err := r.WriteTo(w)
		return int64(k) + m, err
	}
	m, err := cache.WriteParts(r.ctx, w, r.parts, r.off, r.n, r.get)
	r.off, r.n = r.off+m, r.n-m
	return m, err
}

func (r *partsReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.n <= 0 {
			return 0, io.EOF
		}
		for len(r.parts) > 0 && r.off >= r.parts[0].Size {
			r.off -= r.parts[0].Size
			r.parts = r.parts[1:]
		}
		if len(r.parts) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		pt := r.parts[0]
		b := pt.Data
		if pt.Sum != ([32]byte{}) {
			var err error
			if b, err = r.get(r.ctx, pt.Sum); err != nil {
				return 0, err
			}
		}
		if int64(len(b)) != pt.Size {
			return 0, cache.ErrParts
		}
		b = b[r.off:]
		if int64(len(b)) > r.n {
			b = b[:r.n]
		}
		r.cur, r.off, r.n = b, 0, r.n-int64(len(b))
		r.parts = r.parts[1:]
	}
	k := copy(p, r.cur)
	r.cur = r.cur[k:]
	return k, nil
}
