package irpki

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Errors of the .bin reader, wrapped in a *FormatError.
var (
	ErrTruncated = errors.New("truncated")
	ErrWireType  = errors.New("wrong wire type")
	ErrOrder     = errors.New("field out of order")
	ErrPin       = errors.New("group pin mismatch")
	ErrVersion   = errors.New("unsupported layout version")
	ErrKind      = errors.New("wrong kind of file")
	ErrTooLarge  = errors.New("over the size limit")
	ErrInvalid   = errors.New("invalid value")
)

// FormatError reports a .bin file that is not acceptable: what and where
// (byte offset of the field, and the group's repo or the object's URI when
// known).
type FormatError struct {
	Offset int64
	URI    string
	Err    error
}

func (e *FormatError) Error() string {
	if e.URI != "" {
		return fmt.Sprintf("irpki: byte %d (uri %s): %v", e.Offset, e.URI, e.Err)
	}
	return fmt.Sprintf("irpki: byte %d: %v", e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Entry is one SnapshotEntry or DeltaEntry of a group.
type Entry struct {
	Name string
	// Hash is the hash of the object replaced or withdrawn (deltas only).
	Hash    [32]byte
	HasHash bool
	// Content is the object. It aliases the reader's group buffer (no
	// copy) and is valid until the next call to Next: after that the
	// buffer holds the next group, or another Reader's. Callers that keep
	// an object copy it. Name is a string of its own.
	Content    []byte
	HasContent bool
	// Offset is where Content starts in the input, in bytes from its
	// first: a caller that holds the input elsewhere (the parts of a
	// composite file, proxy/validate) finds the object there by it
	// instead of copying Content.
	Offset int64
}

// Group is one publication point of a snapshot.bin or delta.bin.
type Group struct {
	Repo string
	Pin  [32]byte
	// Entries holds a snapshot's objects, or a delta's publishes.
	Entries []Entry
	// Withdrawn holds a delta's withdraws.
	Withdrawn []Entry
	// Raw is the group's whole encoding, pin included. Valid until the next
	// call to Next.
	Raw []byte
	// Offset is where Raw starts in the input.
	Offset int64
}

// Reader reads a snapshot.bin or delta.bin one group at a time, checking
// each group's pin before it hands the group out. It expects fields in
// field-number order, as every writer of this layout that marshals
// deterministically produces.
//
// Memory is bounded by the largest group: a group is read whole into one
// buffer, because its pin covers all of it and nothing of a group may be
// trusted before the pin is checked. The entries are sub-slices of that
// buffer, not copies. The buffer grows with the bytes that arrived, never
// to what a length field claims, and it is reused for the next group and,
// after the last one, by the next Reader.
type Reader struct {
	hw   hashReader
	lim  rrdpxml.Limits
	hdr  rrdpxml.Header
	read bool // header read
	last protowire.Number
	*groupState
	seen    *rrdpxml.URISet
	objs    int
	kind    uint64 // from the kind field, once read
	ver     uint64
	done    bool
	nGroups int // groups read so far
}

// hashReader hashes and counts what is read through it and enforces the
// file size cap.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (hr *hashReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	if hr.n > hr.max {
		return n, ErrTooLarge
	}
	return n, err
}

// NewReader returns a reader of a snapshot.bin or delta.bin. want is the
// kind the caller expects, or 0 to accept either.
func NewReader(r io.Reader, want rrdpxml.Kind, lim rrdpxml.Limits) *Reader {
	lim = lim.WithDefaults()
	rd := &Reader{lim: lim, seen: rrdpxml.NewURISet()}
	rd.hdr.Kind = want
	rd.hw = hashReader{r: r, h: sha256.New(), max: lim.MaxFileSize}
	rd.groupState = getGroupState(&rd.hw)
	return rd
}

func (rd *Reader) offset() int64 {
	if rd.groupState == nil { // released at the end of input
		return rd.hw.n
	}
	return rd.hw.n - int64(rd.br.Buffered())
}

func (rd *Reader) errorf(uri string, err error, format string, args ...any) error {
	return &FormatError{Offset: rd.offset(), URI: uri, Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
}

// readTag reads the next field tag, or io.EOF at the end of input.
func (rd *Reader) readTag() (protowire.Number, protowire.Type, error) {
	v, err := rd.readVarint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, rd.errorf("", ErrInvalid, "field number %d", num)
	}
	return num, typ, nil
}

func (rd *Reader) readVarint() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c, err := rd.br.ReadByte()
		if err != nil {
			if err == io.EOF && shift > 0 {
				return 0, rd.errorf("", ErrTruncated, "inside a varint")
			}
			if errors.Is(err, ErrTooLarge) {
				return 0, rd.errorf("", ErrTooLarge, "file over %d bytes", rd.lim.MaxFileSize)
			}
			return 0, err
		}
		if shift == 63 && c > 1 {
			return 0, rd.errorf("", ErrInvalid, "varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
}

// readBytes reads a length-delimited value of at most max bytes into the
// reader's buffer.
func (rd *Reader) readBytes(max int64, what string) ([]byte, error) {
	n, err := rd.readVarint()
	if err == io.EOF {
		err = rd.errorf("", ErrTruncated, "%s length missing", what)
	}
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, rd.errorf("", ErrTooLarge, "%s of %d bytes, limit %d", what, n, max)
	}
	b, err := rd.fill(int(n))
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, rd.errorf("", ErrTooLarge, "file over %d bytes", rd.lim.MaxFileSize)
		}
		return nil, rd.errorf("", ErrTruncated, "%s of %d bytes", what, n)
	}
	return b, nil
}

// value turns the end of input where a field's value should be into
// ErrTruncated: only a field boundary may end the file.
func (rd *Reader) value(err error, num protowire.Number) error {
	if err == io.EOF {
		return rd.errorf("", ErrTruncated, "value of field %d missing", num)
	}
	return err
}

func (rd *Reader) skip(num protowire.Number, typ protowire.Type) error {
	var err error
	switch typ {
	case protowire.VarintType:
		_, err = rd.readVarint()
	case protowire.Fixed32Type:
		_, err = rd.br.Discard(4)
	case protowire.Fixed64Type:
		_, err = rd.br.Discard(8)
	case protowire.BytesType:
		var n uint64
		if n, err = rd.readVarint(); err == nil {
			if n > uint64(rd.lim.MaxFileSize) {
				return rd.errorf("", ErrTooLarge, "field %d of %d bytes", num, n)
			}
			var m int
			m, err = rd.br.Discard(int(n))
			if err == nil && m < int(n) {
				err = io.EOF
			}
		}
	default:
		return rd.errorf("", ErrWireType, "unsupported wire type %d", typ)
	}
	if errors.Is(err, ErrTooLarge) {
		return rd.errorf("", ErrTooLarge, "file over %d bytes", rd.lim.MaxFileSize)
	}
	return rd.value(err, num)
}

// order enforces field-number order at the top level; repeated groups may
// repeat their number.
func (rd *Reader) order(num protowire.Number) error {
	if num < rd.last || (num == rd.last && num != fCAs) {
		return rd.errorf("", ErrOrder, "field %d after field %d", num, rd.last)
	}
	rd.last = num
	return nil
}

// casTagByte is the first byte of the varint tag of field 43 (groups), two
// bytes long: the header ends where it appears.
const casTagByte = byte((fCAs<<3|2)&0x7f | 0x80)

// Header reads the serial and session that open the file.
func (rd *Reader) Header() (rrdpxml.Header, error) {
	if rd.read {
		return rd.hdr, nil
	}
	for {
		c, err := rd.br.Peek(1)
		if err == io.EOF || (err == nil && c[0] == casTagByte) {
			break // end of input or first group: the header is complete
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return rd.hdr, rd.errorf("", ErrTooLarge, "file over %d bytes", rd.lim.MaxFileSize)
			}
			return rd.hdr, err
		}
		num, typ, err := rd.readTag()
		if err != nil {
			return rd.hdr, err
		}
		if err := rd.order(num); err != nil {
			return rd.hdr, err
		}
		switch num {
		case fSerial:
			if typ != protowire.VarintType {
				return rd.hdr, rd.errorf("", ErrWireType, "serial")
			}
			if rd.hdr.Serial, err = rd.readVarint(); err != nil {
				return rd.hdr, rd.value(err, num)
			}
		case fSession:
			if typ != protowire.BytesType {
				return rd.hdr, rd.errorf("", ErrWireType, "session")
			}
			b, err := rd.readBytes(64, "session")
			if err != nil {
				return rd.hdr, err
			}
			rd.hdr.SessionID = string(b)
		default:
			// Past the header: leave the field for Next.
			if err := rd.trailer(num, typ); err != nil {
				return rd.hdr, err
			}
		}
	}
	if rd.hdr.Serial == 0 {
		return rd.hdr, rd.errorf("", ErrInvalid, "serial missing or zero")
	}
	if !rrdpxml.ValidSessionID(rd.hdr.SessionID) {
		return rd.hdr, rd.errorf("", ErrInvalid, "session %q is not a UUID", rd.hdr.SessionID)
	}
	rd.read = true
	return rd.hdr, nil
}

// trailer handles the fields after the groups: version, kind, unknown.
func (rd *Reader) trailer(num protowire.Number, typ protowire.Type) error {
	var err error
	switch num {
	case fVersion:
		if typ != protowire.VarintType {
			return rd.errorf("", ErrWireType, "version")
		}
		if rd.ver, err = rd.readVarint(); err != nil {
			return rd.value(err, num)
		}
		if rd.ver != Version {
			return rd.errorf("", ErrVersion, "version %d, want %d", rd.ver, Version)
		}
	case fKind:
		if typ != protowire.VarintType {
			return rd.errorf("", ErrWireType, "kind")
		}
		if rd.kind, err = rd.readVarint(); err != nil {
			return rd.value(err, num)
		}
		if rd.kind != kindSnapshot && rd.kind != kindDelta {
			return rd.errorf("", ErrKind, "kind %d is not a snapshot or delta", rd.kind)
		}
		if rd.hdr.Kind != 0 && rd.kind != fileKind(rd.hdr.Kind) {
			return rd.errorf("", ErrKind, "file says kind %d, content or caller says %s", rd.kind, rd.hdr.Kind)
		}
	case fSnapRef, fDeltaRef:
		return rd.errorf("", ErrKind, "a notification, not a snapshot or delta")
	default:
		return rd.skip(num, typ)
	}
	return nil
}

// Next returns the next group, checked against its pin, or io.EOF after the
// last one. At io.EOF the kind field has been checked and Sum is final.
// The group and its entries are valid until the next call to Next; once
// the input is read to its end, the Reader's buffers serve the next
// Reader.
func (rd *Reader) Next() (*Group, error) {
	if !rd.read {
		if _, err := rd.Header(); err != nil {
			return nil, err
		}
	}
	for !rd.done {
		num, typ, err := rd.readTag()
		if err == io.EOF {
			rd.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		if err := rd.order(num); err != nil {
			return nil, err
		}
		if num != fCAs {
			if err := rd.trailer(num, typ); err != nil {
				return nil, err
			}
			continue
		}
		if typ != protowire.BytesType {
			return nil, rd.errorf("", ErrWireType, "group")
		}
		start := rd.offset()
		raw, err := rd.readBytes(rd.lim.MaxFileSize, "group")
		if err != nil {
			return nil, err
		}
		if err := rd.parseGroup(raw, start, rd.offset()-int64(len(raw))); err != nil {
			return nil, err
		}
		rd.nGroups++
		return &rd.group, nil
	}
	// Nothing more is read: the buffers go to the next Reader. The last
	// group was valid until this call.
	rd.release()
	if rd.ver != 0 && rd.kind == 0 {
		// Our writer puts version and kind together at the end: a file
		// with one and not the other was cut. (A file cut before both
		// reads like one of the paper's layout alone; the hash in the
		// notification is what catches that.)
		return nil, rd.errorf("", ErrTruncated, "version field without kind field")
	}
	if rd.kind == 0 && rd.hdr.Kind == 0 {
		return nil, rd.errorf("", ErrKind, "kind field missing and no kind expected")
	}
	if rd.hdr.Kind == 0 {
		rd.hdr.Kind = rrdpxml.KindSnapshot
		if rd.kind == kindDelta {
			rd.hdr.Kind = rrdpxml.KindDelta
		}
	}
	if rd.hdr.Kind == rrdpxml.KindDelta && rd.nGroups == 0 {
		// As RFC 8182's schema for the XML: a delta changes something.
		return nil, rd.errorf("", rrdpxml.ErrEmptyDelta, "no group")
	}
	return nil, io.EOF
}

// Kind returns the kind of file, once known: from the caller's expectation,
// or from the file's kind field after Next returned io.EOF.
func (rd *Reader) Kind() rrdpxml.Kind { return rd.hdr.Kind }

// Sum returns the SHA-256 of the input; final after Next returned io.EOF.
func (rd *Reader) Sum() (s [32]byte) { rd.hw.h.Sum(s[:0]); return s }

// Size returns the bytes read; final after Next returned io.EOF.
func (rd *Reader) Size() int64 { return rd.hw.n }
