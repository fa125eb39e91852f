package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// The origin's XML snapshot, in transparent mode, is served byte for byte,
// so it cannot be regenerated from fragments as the regenerating path's
// is. It is stored as segments of its own bytes instead (originSegmenter):
// read once from the spill it was hashed into as it arrived, cut before
// the <publish> tags whose hash says so (so the cuts depend on the objects
// around them, not on offsets: an object changed moves no other cut), each
// segment compared with the segment of the previous serial that starts
// the same way. A segment seen before is the same blob, with its deflate
// segment; only a new one is hashed and compressed. The gzip copy is one
// gzip member whose deflate stream is the segments' joined (as in
// frag.go), so a serial compresses its changed segments alone.
//
// The gzip copy: per-segment deflate, decided by measurement
// (docs/bench/state.md, "The transparent mode"). An eager gzip of the whole
// snapshot at every serial (what the code did before) took 3.1 s for the
// 806 MB of `large` at level 1 (wall, load 3-4), 0.28 s for the 68 MB of
// paper-10kca (load 2.2): O(repository) a serial. A lazy one, made at the
// first request with single-flight, would put the same delay on that
// request and hold the whole copy in memory while it is made, at every
// serial a relying party asks for the snapshot's gzip. Per-segment
// deflate compresses only the new segments (two of 2,577 for a
// one-object serial on `large`) and nothing at request time; its price is
// the dictionary reset and sync flush at every segment: 1.06% more bytes
// than the whole-file gzip on `large` (349,331,413 against 345,650,307),
// 0.79% on paper-10kca.
const (
	// originMask cuts the origin's snapshot before a <publish> start tag
	// whose FNV-1a hash has these bits zero: one tag in 128 (measured on
	// `large`: 2,577 segments, about 150 objects and 310 KB each), as the
	// regenerating path's chunks.
	originMask = 127
	// originMax ends a segment with no cut point after so many bytes (an
	// origin whose tags the scan does not recognise).
	originMax = 4 << 20
	// inlineMax: a segment this small (the snapshot's start tag, which
	// names the serial) is kept inline in the part list, not as a blob.
	inlineMax = 4 << 10
	// maxTag bounds a <publish> start tag the scan recognises: one whose
	// '>' is further is no cut point. With it the scan decides every
	// position from what follows it within maxTag, never from where a
	// read ended, so the cuts (and the gzip copy's bytes) do not depend on
	// read sizes (which the buffer's growth, so the Go version, sets).
	maxTag = 64 << 10
)

// publishTag opens every publish element the scan cuts before.
var publishTag = []byte("<publish")

// originSegs are the segments of a transparent follower's current XML
// snapshot (the origin's), by key: what the next serial reuses. Never
// modified once built.
type originSegs struct {
	segs map[segKey]originSeg
}

// segKey finds a segment of the previous serial that may be the same:
// its size and a hash of its first bytes (the start tag, which names its
// first object). The bytes are compared before one is reused.
type segKey struct {
	size int
	head uint64
}

// originSeg is a segment of the origin's XML and its deflate segment.
//
// elems are the offsets, from the segment's start, of the publish
// elements that the decoder found lying wholly inside it in the serial
// that stored it, whose content was then that serial's state (checked
// against the deltas' state, or taken as the state): the next serial
// that finds the same bytes and the decoder starting an element at one
// of these offsets knows the element's content without decoding it
// (checkOrigin). Nil for a segment not decoded with its offsets (a
// restart's, resumeOrigin): its elements are decoded again.
type originSeg struct {
	plain, gz segment
	elems     []int32
}

func keyOf(b []byte) segKey {
	h := uint64(14695981039346656037)
	for _, c := range b[:min(len(b), 256)] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return segKey{len(b), h}
}

// originSegmenter cuts the origin's XML snapshot into segments as it is
// read (fill), reusing those of prev.
type originSegmenter struct {
	prev, next *originSegs
	zd         *deflater
	buf        []byte // the bytes read and not yet in a segment, in mem
	mem        []byte // buf's array, whole
	scan       int    // buf[1:scan] holds no cut point
	started    bool   // the start tag's segment was cut
	eof        bool   // buf ends where the snapshot does
	crc        hash.Hash32
	size       int64
	parts      []cache.Part
	zparts     []cache.Part
	stored     []segment // new blobs
	built      int       // segments encoded
	reused     int       // segments taken from prev
	// out, if set, receives every segment as it is cut, for the decoder
	// that reads the snapshot in the same pass (segPipe).
	out *segPipe
}

func newOriginSegmenter(prev *originSegs, level int) (*originSegmenter, error) {
	zd, err := getDeflater(level)
	if err != nil {
		return nil, fmt.Errorf("segment the origin's snapshot: %w", err)
	}
	if prev == nil {
		prev = &originSegs{}
	}
	mem := make([]byte, 1<<20)
	return &originSegmenter{prev: prev, next: &originSegs{segs: make(map[segKey]originSeg, len(prev.segs))},
		zd: zd, buf: mem[:0], mem: mem, crc: crc32.NewIEEE(),
		zparts: []cache.Part{{Data: gzipHeader, Size: int64(len(gzipHeader))}}}, nil
}

// fill reads r to its end, cutting segments as it goes.
func (s *originSegmenter) fill(r io.Reader) error {
	for {
		if len(s.buf) == cap(s.buf) {
			// Full to the end of mem: move what is left to its start if
			// that frees at least half of it (once per fill, not per
			// segment: moving the rest after every segment moved more
			// than twice the snapshot's bytes, 0.24 s of a serial on
			// `large`), else grow.
			if len(s.buf) <= len(s.mem)/2 {
				s.buf = s.mem[:copy(s.mem, s.buf)]
			} else {
				s.mem = append(s.buf, 0)
				s.mem = s.mem[:cap(s.mem)]
				s.buf = s.mem[:len(s.buf)]
			}
		}
		n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		s.eof = err == io.EOF
		if err := s.cut(); err != nil {
			return err
		}
		if err == io.EOF {
			if len(s.buf) > 0 {
				return s.emit(len(s.buf))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the origin's snapshot back: %w", err)
		}
	}
}

// cut emits the segments that end in buf.
func (s *originSegmenter) cut() error {
	for {
		if s.scan < 1 {
			s.scan = 1 // a cut at 0 would make an empty segment
		}
		at, tagEnd := -1, -1
		for s.scan < len(s.buf) {
			i := bytes.Index(s.buf[s.scan:], publishTag)
			if i < 0 {
				s.scan = max(s.scan, len(s.buf)-len(publishTag)+1)
				break
			}
			p := s.scan + i
			q := p + len(publishTag)
			if q >= len(s.buf) {
				if s.eof {
					s.scan = len(s.buf)
					break
				}
				s.scan = p // wait for the byte after the name
				break
			}
			if c := s.buf[q]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				s.scan = q // another name, such as <publisher
				continue
			}
			e := bytes.IndexByte(s.buf[q:min(len(s.buf), q+maxTag)], '>')
			if e < 0 {
				if len(s.buf) < q+maxTag && !s.eof {
					s.scan = p // wait for the end of the tag
					break
				}
				s.scan = q // no tag the scan recognises
				continue
			}
			if !s.started || cutsAt(s.buf[p:q+e+1]) {
				at, tagEnd = p, q+e+1
				break
			}
			s.scan = q + e + 1
		}
		switch {
		case at > 0 && at <= originMax:
			s.started = true
			if err := s.emit(at); err != nil {
				return err
			}
			s.scan = tagEnd - at
		case len(s.buf) > originMax && (at > originMax || at < 0 && (s.scan > originMax || s.eof)):
			// No cut point up to originMax: every position up to it is
			// decided (the scan passed it), never a tag that only more
			// bytes would complete.
			if err := s.emit(originMax); err != nil {
				return err
			}
			s.scan = 0
		default:
			return nil
		}
	}
}

// cutsAt reports whether a segment starts at the start tag tag: FNV-1a
// (64 bits) of the tag, which names its object.
func cutsAt(tag []byte) bool {
	h := uint64(14695981039346656037)
	for _, c := range tag {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h&originMask == 0
}

// emit makes buf[:n] a segment: the previous serial's if it has the same
// bytes, else a new blob and its deflate segment.
func (s *originSegmenter) emit(n int) error {
	b := s.buf[:n]
	s.crc.Write(b)
	s.size += int64(n)
	k := keyOf(b)
	sg, ok := s.prev.segs[k]
	ok = ok && bytes.Equal(sg.plain.b, b)
	if ok {
		s.reused++
	} else {
		c := bytes.Clone(b)
		z, err := s.zd.segment(c)
		if err != nil {
			return fmt.Errorf("segment the origin's snapshot: %w", err)
		}
		sg = originSeg{plain: segment{sha256.Sum256(c), c}, gz: z}
		s.built++
	}
	_, dup := s.next.segs[k]
	if !dup {
		s.next.segs[k] = sg
	}
	if s.out != nil {
		c := cutSeg{start: s.size - int64(n), b: sg.plain.b, key: k, stored: !dup}
		if ok {
			c.elems = sg.elems
		}
		if err := s.out.send(c); err != nil {
			return err
		}
	}
	if n <= inlineMax {
		s.parts = append(s.parts, cache.Part{Data: sg.plain.b, Size: int64(n)})
		s.zparts = append(s.zparts, cache.Part{Data: sg.gz.b, Size: int64(len(sg.gz.b))})
	} else {
		if !ok {
			s.stored = append(s.stored, sg.plain, sg.gz)
		}
		s.parts = append(s.parts, cache.Part{Sum: sg.plain.sum, Size: int64(n)})
		s.zparts = append(s.zparts, cache.Part{Sum: sg.gz.sum, Size: int64(len(sg.gz.b))})
	}
	s.buf = s.buf[n:]
	s.scan -= n
	return nil
}

// files returns the composite XML snapshot (the origin's bytes, size
// bytes whose SHA-256 up the fetch checked, served at path p) and its
// gzip copy, with the blobs to store before them, and the segments for the
// next serial.
func (s *originSegmenter) files(p string, up [32]byte, size int64, serial uint64) ([]blob, *originSegs, error) {
	if s.size != size {
		return nil, nil, fmt.Errorf("snapshot %d: %d bytes read back from the spill, %d fetched", serial, s.size, size)
	}
	zend := storedBlock(nil, nil, true)
	zend = binary.LittleEndian.AppendUint32(zend, s.crc.Sum32())
	zend = binary.LittleEndian.AppendUint32(zend, uint32(s.size))
	zparts := append(s.zparts, cache.Part{Data: zend, Size: int64(len(zend))})
	var zsize int64
	for _, p := range zparts {
		zsize += p.Size
	}
	list, zlist := cache.EncodeParts(s.parts), cache.EncodeParts(zparts)
	lsum, zlsum := sha256.Sum256(list), sha256.Sum256(zlist)
	fl := File{Path: p, Sum: up, Size: size, Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: serial, Upstream: up, Index: lsum}
	zf := fl
	zf.Sum, zf.Size, zf.Gzip, zf.Index = zlsum, zsize, true, zlsum
	x := blob{File: fl, parts: append(s.stored, segment{lsum, list})}
	z := blob{File: zf, parts: []segment{{zlsum, zlist}}}
	return []blob{x, z}, s.next, nil
}

// resumeOrigin rebuilds the segments of a transparent head's composite
// XML snapshot x and its gzip copy z from their stored part lists (the
// pinned blobs of the current head, read with get, no copy), so that a
// restarted follower's next serial reuses them as the serials before the
// restart did.
func resumeOrigin(ctx context.Context, x, z *File, get cache.Getter) (*originSegs, error) {
	if !x.Composite() || !z.Composite() {
		return nil, fmt.Errorf("resume the origin's segments: %s is not stored as segments", x.Path)
	}
	parts, err := cache.FileParts(ctx, x, get)
	if err != nil {
		return nil, fmt.Errorf("resume the origin's segments: %w", err)
	}
	zparts, err := cache.FileParts(ctx, z, get)
	if err != nil {
		return nil, fmt.Errorf("resume the origin's segments: %w", err)
	}
	if len(zparts) != len(parts)+2 {
		return nil, fmt.Errorf("resume the origin's segments: %s has %d parts, its gzip copy %d", x.Path, len(parts), len(zparts))
	}
	read := func(p cache.Part) (segment, error) {
		if p.Data != nil {
			return segment{sha256.Sum256(p.Data), p.Data}, nil
		}
		return partSegment(ctx, get, p)
	}
	o := &originSegs{segs: make(map[segKey]originSeg, len(parts))}
	for i, p := range parts {
		plain, err := read(p)
		if err != nil {
			return nil, fmt.Errorf("resume the origin's segments: %s: %w", x.Path, err)
		}
		gz, err := read(zparts[i+1])
		if err != nil {
			return nil, fmt.Errorf("resume the origin's segments: %s: %w", z.Path, err)
		}
		k := keyOf(plain.b)
		if _, dup := o.segs[k]; !dup {
			o.segs[k] = originSeg{plain: plain, gz: gz}
		}
	}
	return o, nil
}

// segPipe carries the segments of the origin's snapshot from the
// segmenter, as it cuts them, to the decoder that reads the same bytes
// (checkOrigin): one read of the spill for both. The segments' bytes are
// immutable (a new blob's, or the previous serial's), so they travel
// without a copy. The segmenter's goroutine sends and closes; the
// decoder's read-ahead reads (Read); the decoder's goroutine looks the
// segments up (seen) and, when it ends, stops the segmenter (stop).
type segPipe struct {
	ch       chan cutSeg
	done     chan struct{} // closed by stop
	stopOnce sync.Once
	err      error  // the segmenter's, set before ch is closed
	cur      []byte // Read's: the rest of the segment being read

	mu   sync.Mutex
	segs []cutSeg // every segment sent, in order
}

// cutSeg is one segment of the origin's snapshot: its offset in the
// snapshot, its bytes, its key and whether it is the one the next serial
// finds under that key (stored), and elems, the previous serial's element
// offsets when the previous serial had the same bytes.
type cutSeg struct {
	start  int64
	b      []byte
	key    segKey
	stored bool
	elems  []int32
}

// errPipeStopped ends a segmenter whose decoder stopped (it failed; the
// decoder's error is the one returned).
var errPipeStopped = errors.New("the snapshot's decoder stopped")

func newSegPipe() *segPipe {
	return &segPipe{ch: make(chan cutSeg, 16), done: make(chan struct{})}
}

// send hands c to the decoder.
func (p *segPipe) send(c cutSeg) error {
	p.mu.Lock()
	p.segs = append(p.segs, c)
	p.mu.Unlock()
	select {
	case p.ch <- c:
		return nil
	case <-p.done:
		return errPipeStopped
	}
}

// close ends the snapshot, cut whole (err nil) or not.
func (p *segPipe) close(err error) {
	p.err = err
	close(p.ch)
}

// stop tells the segmenter the decoder is gone.
func (p *segPipe) stop() { p.stopOnce.Do(func() { close(p.done) }) }

// Read reads the segments' bytes, in order.
func (p *segPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		select {
		case c, ok := <-p.ch:
			if !ok {
				if p.err != nil {
					return 0, p.err
				}
				return 0, io.EOF
			}
			p.cur = c.b
		case <-p.done:
			return 0, errPipeStopped
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// seen returns the segments sent so far.
func (p *segPipe) seen() []cutSeg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.segs
}

// setElems gives the segments of next the element offsets found in this
// serial's pass (elems, by index in segs): what the serial after reuses.
// A reused segment whose offsets did not change keeps its slice.
func setElems(next *originSegs, segs []cutSeg, elems [][]int32) {
	for i, c := range segs {
		if !c.stored {
			continue
		}
		var e []int32
		if i < len(elems) {
			e = elems[i]
		}
		if slices.Equal(e, c.elems) {
			e = c.elems
		}
		sg := next.segs[c.key]
		sg.elems = e
		next.segs[c.key] = sg
	}
}
