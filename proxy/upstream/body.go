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
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Body is the body of a response: decompressed, capped, and hashed with
// SHA-256 as it streams. A watchdog cuts the transfer when it falls below
// the minimum rate or when the fetch's context ends. Read and Close are
// for one goroutine.
type Body struct {
	url  string
	max  int64
	resp *fasthttp.Response

	raw   io.Reader // the network stream, counted
	src   io.Reader // raw or its gzip decoder
	gz    bool
	h     hash.Hash
	n     int64
	rawN  atomic.Int64
	err   error
	eof   bool
	sum   [32]byte
	stopC func() bool
	timer *time.Timer

	mu     sync.Mutex // guards resp against the watchdog
	closed bool
	cause  error // why the watchdog cut the transfer
}

func newBody(ctx context.Context, c *Client, resp *fasthttp.Response, url string, max int64, gz bool) *Body {
	b := &Body{url: url, max: max, resp: resp, gz: gz, h: sha256.New()}
	stream := resp.BodyStream()
	if stream == nil {
		stream = bytes.NewReader(resp.Body())
	}
	b.raw = &countReader{r: io.LimitReader(stream, max+1), n: &b.rawN}
	b.src = b.raw
	if c.cfg.MinRate > 0 {
		floor := c.cfg.MinRate * int64(c.cfg.RateWindow) / int64(time.Second)
		var last int64
		var check func()
		check = func() {
			n := b.rawN.Load()
			if n-last < floor {
				b.cut(fmt.Errorf("%w: %d bytes in %v, floor %d B/s", ErrTooSlow, n-last, c.cfg.RateWindow, c.cfg.MinRate))
				return
			}
			last = n
			b.mu.Lock()
			if !b.closed {
				b.timer.Reset(c.cfg.RateWindow)
			}
			b.mu.Unlock()
		}
		b.mu.Lock()
		b.timer = time.AfterFunc(c.cfg.RateWindow, check)
		b.mu.Unlock()
	}
	b.stopC = context.AfterFunc(ctx, func() { b.cut(context.Cause(ctx)) })
	return b
}

// cut ends the transfer from the watchdog: closing the stream interrupts
// a blocked Read.
func (b *Body) cut(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.cause != nil {
		return
	}
	b.cause = cause
	_ = b.resp.CloseBodyStream()
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
		b.eof = true
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
	b.mu.Lock()
	cause := b.cause
	b.mu.Unlock()
	switch {
	case cause != nil:
		err = cause
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

// Close releases the body and its connection. It is safe to call more
// than once.
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
	b.stopC()
	release(b.resp)
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
