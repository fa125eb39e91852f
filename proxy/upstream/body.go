package upstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Body is the body of a response: decompressed, capped, and hashed with
// SHA-256 as it streams. It is read under the fetch's context: a watchdog
// ends that context when the transfer falls below the minimum rate, and
// its ending (the kind's timeout, the caller's context) cuts a Read that
// is blocked. Read and Close are for one goroutine.
type Body struct {
	url   string
	max   int64
	ctx   context.Context
	abort func(cause error) // ends ctx
	resp  *http.Response

	raw  io.Reader // the network stream, capped and counted
	src  io.Reader // raw or its gzip decoder
	gz   bool
	h    hash.Hash
	n    int64
	rawN atomic.Int64
	err  error
	sum  [32]byte

	mu     sync.Mutex // guards timer and closed against the watchdog
	timer  *time.Timer
	closed bool
}

func newBody(ctx context.Context, abort func(error), c *Client, resp *http.Response, url string, max int64, gz bool) *Body {
	b := &Body{url: url, max: max, ctx: ctx, abort: abort, resp: resp, gz: gz, h: sha256.New()}
	b.raw = &countReader{r: io.LimitReader(resp.Body, max+1), n: &b.rawN}
	b.src = b.raw
	if c.cfg.MinRate > 0 && c.cfg.RateWindow > 0 {
		window, rate := c.cfg.RateWindow, c.cfg.MinRate
		floor := rate * int64(window) / int64(time.Second)
		var last int64
		check := func() {
			n := b.rawN.Load()
			if n-last < floor {
				b.abort(fmt.Errorf("%w: %d bytes in %v, floor %d B/s", ErrTooSlow, n-last, window, rate))
				return
			}
			last = n
			b.mu.Lock()
			if !b.closed {
				b.timer.Reset(window)
			}
			b.mu.Unlock()
		}
		b.mu.Lock()
		b.timer = time.AfterFunc(window, check)
		b.mu.Unlock()
	}
	return b
}

// Read reads the decompressed body.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.gz && b.src == b.raw {
		zr, err := gzip.NewReader(b.raw)
		if err != nil {
			return 0, b.fail(err)
		}
		zr.Multistream(false)
		b.src = zr
	}
	n, err := b.src.Read(p)
	if int64(n) > b.max-b.n {
		return 0, b.fail(fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.max))
	}
	b.n += int64(n)
	b.h.Write(p[:n])
	if err == io.EOF {
		if b.rawN.Load() > b.max {
			return n, b.fail(fmt.Errorf("%w: more than %d bytes on the wire", ErrTooLarge, b.max))
		}
		copy(b.sum[:], b.h.Sum(nil))
		b.err = io.EOF
		return n, io.EOF
	}
	if err != nil {
		return n, b.fail(err)
	}
	return n, nil
}

// fail records the first error as an *Error naming its cause.
func (b *Body) fail(err error) error {
	switch {
	case b.ctx.Err() != nil:
		err = why(b.ctx, err)
	case b.gz && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) && b.rawN.Load() <= b.max):
		err = fmt.Errorf("%w: %v", ErrGzip, err)
	case b.rawN.Load() > b.max:
		err = fmt.Errorf("%w: more than %d bytes on the wire", ErrTooLarge, b.max)
	default:
		err = classify(err)
	}
	b.err = &Error{Op: "read", URL: b.url, Err: err}
	return b.err
}

// Sum returns the SHA-256 of the decompressed body; valid once Read
// returned io.EOF.
func (b *Body) Sum() [32]byte { return b.sum }

// Size returns the decompressed bytes read so far.
func (b *Body) Size() int64 { return b.n }

// Close releases the body and ends its fetch: a body read to its end
// leaves its connection for the next fetch, one abandoned early closes
// it. It is safe to call more than once.
func (b *Body) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	if b.err == io.EOF {
		// The gzip decoder stops at its trailer: what the origin sent
		// after it (nothing, normally) is read so that the connection
		// can be kept.
		_, _ = io.CopyN(io.Discard, b.resp.Body, 4<<10)
	}
	b.resp.Body.Close()
	b.abort(nil)
	return nil
}

func (b *Body) readAll() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
