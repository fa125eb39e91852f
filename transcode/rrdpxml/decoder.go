package rrdpxml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Default limits, used for the zero fields of Limits.
const (
	defaultMaxFileSize   = 4 << 30
	defaultMaxObjectSize = 32 << 20
	defaultMaxObjects    = 20_000_000
	defaultMaxURILen     = 2048
	defaultMaxDeltas     = 100_000
)

// Fixed caps on tokens that RRDP never needs long.
const (
	maxComment = 1 << 20 // bytes of one comment, "<!--" to "-->"
	maxDecl    = 1 << 10 // bytes of the XML declaration
)

func (l Limits) withDefaults() Limits {
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = defaultMaxFileSize
	}
	if l.MaxObjectSize <= 0 {
		l.MaxObjectSize = defaultMaxObjectSize
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = defaultMaxObjects
	}
	if l.MaxURILen <= 0 {
		l.MaxURILen = defaultMaxURILen
	}
	if l.MaxDeltas <= 0 {
		l.MaxDeltas = defaultMaxDeltas
	}
	return l
}

type decState uint8

const (
	stateStart decState = iota // before the root start tag
	stateBody                  // inside the root element
	stateEnd                   // root element closed, trailer not yet read
	stateDone                  // all input read and accepted
	stateFailed
)

// A Decoder reads one RRDP file (RFC 8182) from an io.Reader: Header
// first, then Next until io.EOF for a snapshot or delta, or Notification
// for a notification. Errors of the underlying reader are returned wrapped
// (errors.Is finds the reader's error); rejections of the input are a
// *SyntaxError.
//
// The decoder is strict: it accepts the XML that RFC 8182 describes and
// nothing else (see the package's sentinel errors for what it rejects),
// and every rejection is a *SyntaxError saying what and where. It never
// holds the whole input: memory is bounded by the largest element (at
// most about 1.5 times the base64 size of Limits.MaxObjectSize, a start
// tag at most 16 times Limits.MaxURILen, a comment at most 1 MiB), a
// read-ahead of four 256 KiB blocks, and a 16-byte key per URI seen so far
// to find duplicates (two 64-bit maphash values under random seeds; two
// distinct URIs among n collide with probability about n²/2¹²⁹, 10⁻²⁵ for
// 20 million). Whitespace between elements costs nothing and is bounded
// only by Limits.MaxFileSize.
//
// A goroutine owned by the decoder reads the input ahead and computes its
// SHA-256 in parallel with the decoding. It ends by itself at the end of
// input and is told to stop when decoding fails; Close stops it and waits
// for it, so call Close (typically deferred) whenever a decoder is dropped
// early. A pending Read on the underlying reader is not interrupted: close
// that reader to cut it short.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	lim        Limits
	maxTag     int // bytes of a start tag
	maxContent int // bytes of a publish element, start tag to end tag
	feed       *feed

	// The window: buf[r:w] is read and not yet consumed; the token being
	// parsed starts at r, and offsets in the parsing code are relative to
	// r. base is the input offset of buf[0].
	buf  []byte
	r, w int
	base int64
	cap  int    // how far a token may reach from r
	what string // what the current token is, for errors
	uri  string // uri of the current element, for errors
	eof  bool   // the feed has nothing more

	line   int // line number at buf[lineAt]
	lineAt int

	state decState
	err   error // sticky, once failed
	hdr   Header
	root  elemID // the root element
	sum   [32]byte

	count   int // publish and withdraw elements so far
	uris    uriSet
	elem    Element
	vals    [nAttrs]attrVal
	seen    uint8
	content []byte // decoded content of the current publish
	scratch []byte // unescaped attribute values, compacted base64

	// deferContent: Next leaves a publish's content to Content, which
	// decodes pending, the base64 text of the element Next returned
	// last (DeferContent).
	deferContent bool
	pending      pendingContent
}

// pendingContent locates the base64 text of the last publish element
// while its content is deferred: [s, e) relative to r before the
// element was consumed, back bytes ago.
type pendingContent struct {
	s, e, back int
	set        bool
}

// NewDecoder returns a decoder of r within lim. It starts the read-ahead
// goroutine at once.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	return newDecoder(r, lim, true)
}

// NewDecoderUnhashed is NewDecoder for input whose SHA-256 the caller
// already has (a body hashed as it arrived): Sum stays zero, and the
// decoder spares a hash pass over the input.
func NewDecoderUnhashed(r io.Reader, lim Limits) *Decoder {
	return newDecoder(r, lim, false)
}

func newDecoder(r io.Reader, lim Limits, hash bool) *Decoder {
	lim = lim.withDefaults()
	d := &Decoder{lim: lim, line: 1}
	d.maxTag = 16*lim.MaxURILen + 4096
	d.maxContent = d.maxTag + base64.StdEncoding.EncodedLen(lim.MaxObjectSize)/2*3 + 4096
	d.feed = startFeed(r, lim.MaxFileSize, hash)
	d.uris = newURISet()
	return d
}

// DeferContent makes Next return publish elements without their content,
// which Content then decodes on request: a caller that knows an element's
// content already (the same bytes decoded before) spares the base64
// decoding. Everything else is checked as before, on every element; what
// only the content's decoding checks (its base64, Limits.MaxObjectSize,
// Limits.RejectEmptyContent for text that is all whitespace) is checked
// when Content is called. Call it before the first Next.
func (d *Decoder) DeferContent() { d.deferContent = true }

// ExpectElements sizes the decoder's check for duplicate URIs for about n
// publish and withdraw elements (at most Limits.MaxObjects), so that it
// does not grow by steps as they come: a hint from a caller that knows
// the file's size in objects (the state a snapshot should hold). Call it
// before the first Next.
func (d *Decoder) ExpectElements(n int) {
	d.uris.grow(min(n, d.lim.MaxObjects))
}

// Content returns the content of the publish element Next returned last,
// decoding it if DeferContent deferred it. It is valid until the next
// call to Next; nil for a withdraw. An error in the content fails the
// decoder, as Next would have.
func (d *Decoder) Content() ([]byte, error) {
	if d.state == stateFailed {
		return nil, d.err
	}
	if !d.pending.set {
		return d.elem.Content, nil
	}
	p := d.pending
	d.pending.set = false
	// The window still holds the element: nothing is read between Next
	// and here.
	d.r -= p.back
	err := d.decodeContent(p.s, p.e)
	d.r += p.back
	if err != nil {
		return nil, d.fail(err)
	}
	return d.elem.Content, nil
}

// Header reads the input up to the root start tag and returns what it
// says: the kind of file from the root element's name, the session and
// the serial. It may be called again; it reads only once.
func (d *Decoder) Header() (Header, error) {
	if d.hdr.Kind != 0 {
		return d.hdr, nil
	}
	if d.state == stateFailed {
		return Header{}, d.err
	}
	if err := d.prolog(); err != nil {
		return Header{}, d.fail(err)
	}
	return d.hdr, nil
}

// Sum returns the SHA-256 of all input bytes. It is valid once the input
// has been read to its end and accepted (after Next returned io.EOF, or
// after Notification); before that, and from NewDecoderUnhashed, it is
// zero.
func (d *Decoder) Sum() [32]byte { return d.sum }

// Size returns the number of input bytes consumed so far; once the input
// is accepted, its length.
func (d *Decoder) Size() int64 { return d.base + int64(d.r) }

// Close stops the read-ahead goroutine and waits for it to return. It is
// safe to call more than once and after the end of input; the decoder is
// unusable afterwards. It always returns nil.
func (d *Decoder) Close() error {
	d.feed.signal()
	<-d.feed.done
	if d.state != stateDone && d.state != stateFailed {
		d.state = stateFailed
		d.err = errors.New("rrdpxml: decoder closed")
	}
	return nil
}

// fail records err as the decoder's final error and stops the feed.
func (d *Decoder) fail(err error) error {
	if d.state != stateFailed {
		d.state = stateFailed
		d.err = err
		d.feed.signal()
	}
	return d.err
}

// syntax returns a SyntaxError at offset off from r.
func (d *Decoder) syntax(off int, uri string, err error) error {
	pos := d.r + off
	if uri == "" {
		uri = d.uri
	}
	return &SyntaxError{Line: d.lineOf(pos), Offset: d.base + int64(pos), URI: uri, Err: err}
}

// lineOf returns the line of buf[pos]; lines are counted lazily, once.
func (d *Decoder) lineOf(pos int) int {
	switch {
	case pos > d.lineAt:
		d.line += bytes.Count(d.buf[d.lineAt:pos], newline)
		d.lineAt = pos
	case pos < d.lineAt:
		return d.line - bytes.Count(d.buf[pos:d.lineAt], newline)
	}
	return d.line
}

var newline = []byte{'\n'}

// more appends one block of input to the window. At the end of input it
// returns io.EOF, or the reason the feed failed.
func (d *Decoder) more() error {
	if d.eof {
		return d.feedErr()
	}
	blk, ok := <-d.feed.full
	if !ok {
		d.eof = true
		return d.feedErr()
	}
	if cap(d.buf)-d.w < len(blk) {
		// Drop the consumed part of the window, then grow if still short.
		d.lineOf(d.r)
		copy(d.buf, d.buf[d.r:d.w])
		d.w -= d.r
		d.base += int64(d.r)
		d.lineAt -= d.r
		d.r = 0
		if cap(d.buf)-d.w < len(blk) {
			n := max(2*cap(d.buf), d.w+len(blk), 2*blockSize)
			if lim := d.maxContent + 2*blockSize; n > lim && d.w+len(blk) <= lim {
				n = lim
			}
			nb := make([]byte, n)
			copy(nb, d.buf[:d.w])
			d.buf = nb
		}
	}
	d.buf = d.buf[:cap(d.buf)]
	d.w += copy(d.buf[d.w:], blk)
	d.feed.recycle(blk[:cap(blk)])
	return nil
}

func (d *Decoder) feedErr() error {
	switch err := d.feed.err; {
	case err == nil:
		return io.EOF
	case err == errFileTooLarge:
		return d.syntax(d.w-d.r, "", errorf(ErrTooLarge, "input longer than %d bytes", d.lim.MaxFileSize))
	default:
		return fmt.Errorf("rrdpxml: cannot read input at byte %d: %w", d.base+int64(d.w), err)
	}
}

// avail tries to have n bytes from r in the window and returns how many
// there are: fewer than n only at the end of input.
func (d *Decoder) avail(n int) (int, error) {
	for d.w-d.r < n {
		if n > d.cap {
			return 0, d.tooLarge()
		}
		if err := d.more(); err != nil {
			if err == io.EOF {
				return d.w - d.r, nil
			}
			return 0, err
		}
	}
	return d.w - d.r, nil
}

// ensure makes n bytes from r available, or fails.
func (d *Decoder) ensure(n int) error {
	if d.w-d.r >= n {
		return nil
	}
	m, err := d.avail(n)
	if err != nil {
		return err
	}
	if m < n {
		return d.syntax(m, "", errorf(ErrUnexpectedEOF, "in %s", d.what))
	}
	return nil
}

func (d *Decoder) tooLarge() error {
	return d.syntax(0, "", errorf(ErrTooLarge, "%s longer than %d bytes", d.what, d.cap))
}

// at returns the byte at offset off from r.
func (d *Decoder) at(off int) (byte, error) {
	if d.r+off < d.w {
		return d.buf[d.r+off], nil
	}
	if err := d.ensure(off + 1); err != nil {
		return 0, err
	}
	return d.buf[d.r+off], nil
}

// indexFrom returns the offset of the first c at or after offset off.
func (d *Decoder) indexFrom(off int, c byte) (int, error) {
	for {
		if b := d.buf[d.r:d.w]; off < len(b) {
			if i := bytes.IndexByte(b[off:], c); i >= 0 {
				if off+i >= d.cap {
					return 0, d.tooLarge()
				}
				return off + i, nil
			}
			off = len(b)
		}
		if err := d.ensure(off + 1); err != nil {
			return 0, err
		}
	}
}

// hasPrefix tells whether the input at offset off starts with s.
func (d *Decoder) hasPrefix(off int, s string) (bool, error) {
	n, err := d.avail(off + len(s))
	if err != nil || n < off+len(s) {
		return false, err
	}
	return string(d.buf[d.r+off:d.r+off+len(s)]) == s, nil
}

// skipSpace consumes whitespace and returns the next byte, not consumed.
// At the end of input it returns io.EOF.
func (d *Decoder) skipSpace() (byte, error) {
	for {
		for d.r < d.w {
			if c := d.buf[d.r]; !isSpace(c) {
				return c, nil
			}
			d.r++
		}
		if err := d.more(); err != nil {
			return 0, err
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
