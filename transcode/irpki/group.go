package irpki

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Sizes of the group buffer: it starts at minGroupBuf and, each time it is
// full, grows to at most four times what it holds (a 16 MB group costs
// about 21 MB of allocation and 5 MB of copying when no buffer is pooled);
// buffers over maxPooledBuf are left to the garbage collector rather than
// kept for the next Reader. readAhead is the input buffer.
const (
	minGroupBuf  = 64 << 10
	maxPooledBuf = 64 << 20
	readAhead    = 256 << 10
)

// groupState is what a Reader needs while it reads groups and a finished
// Reader hands to the next one: the input buffer, the group buffer, the
// group with its entry lists, the pin hash.
type groupState struct {
	br    *bufio.Reader
	buf   []byte
	group Group
	pin   hash.Hash
	uri   []byte // scratch: repo + name of the entry being checked
}

var groupStates sync.Pool // of *groupState

func getGroupState(r io.Reader) *groupState {
	if st, ok := groupStates.Get().(*groupState); ok {
		st.br.Reset(r)
		return st
	}
	return &groupState{br: bufio.NewReaderSize(r, readAhead), pin: sha256.New()}
}

// release gives the reader's buffers to the next Reader. The group last
// handed out and its entries become invalid: they alias the buffer.
func (rd *Reader) release() {
	st := rd.groupState
	if st == nil {
		return
	}
	rd.groupState = nil
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	st.br.Reset(nil)
	g := &st.group
	clear(g.Entries[:cap(g.Entries)])
	clear(g.Withdrawn[:cap(g.Withdrawn)])
	*g = Group{Entries: g.Entries[:0], Withdrawn: g.Withdrawn[:0]}
	groupStates.Put(st)
}

// fill reads the next n bytes of input into the group buffer. The buffer
// grows as the bytes arrive, to at most four times what it holds, never to
// the length a field merely claims: a short file cannot make the reader
// allocate more than a few times what it holds. The error is the reader's
// (ErrTooLarge) or io.ErrUnexpectedEOF.
func (st *groupState) fill(n int) ([]byte, error) {
	b := st.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(n, max(4*cap(b), minGroupBuf)))
			copy(grown, b)
			b = grown
			st.buf = b
		}
		k, err := io.ReadFull(st.br, b[len(b):min(n, cap(b))])
		b = b[:len(b)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// parseGroup decodes one CA or DeltaCA message and checks its pin. Its
// fields must come in field-number order; the pin is checked against the
// encoding of every other field. The entries alias raw. start is where
// the group's field starts in the input (for errors), rawAt where raw does.
func (rd *Reader) parseGroup(raw []byte, start, rawAt int64) error {
	g := &rd.group
	*g = Group{Entries: g.Entries[:0], Withdrawn: g.Withdrawn[:0], Raw: raw, Offset: rawAt}
	pinAt, pinEnd := -1, -1
	var last protowire.Number
	b := raw
	for len(b) > 0 {
		at := len(raw) - len(b)
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: group field tag", ErrTruncated)}
		}
		if num < last || (num == last && num != fEntries && num != fWithdrawn) {
			return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: group field %d after %d", ErrOrder, num, last)}
		}
		last = num
		b = b[n:]
		if typ != protowire.BytesType {
			return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: group field %d", ErrWireType, num)}
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: group field %d", ErrTruncated, num)}
		}
		b = b[n:]
		switch num {
		case fRepo:
			g.Repo = string(v)
			if !strings.HasSuffix(g.Repo, "/") {
				return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: group repo does not end in /", ErrInvalid)}
			}
		case fEntries, fWithdrawn:
			var list *[]Entry
			if num == fWithdrawn {
				list = &g.Withdrawn
			} else {
				list = &g.Entries
			}
			*list = append(*list, Entry{})
			e := &(*list)[len(*list)-1]
			if err := rd.parseEntry(e, v, rawAt+int64(len(raw)-len(b)-len(v)), num == fWithdrawn, g.Repo); err != nil {
				return &FormatError{Offset: start + int64(at), URI: g.Repo + e.Name, Err: err}
			}
		case fPin:
			if len(v) != sha256.Size {
				return &FormatError{Offset: start + int64(at), URI: g.Repo, Err: fmt.Errorf("%w: pin of %d bytes", ErrInvalid, len(v))}
			}
			copy(g.Pin[:], v)
			pinAt, pinEnd = at, len(raw)-len(b)
		}
	}
	if pinAt < 0 {
		return &FormatError{Offset: start, URI: g.Repo, Err: fmt.Errorf("%w: group has no pin", ErrPin)}
	}
	rd.pin.Reset()
	rd.pin.Write(raw[:pinAt])
	rd.pin.Write(raw[pinEnd:])
	var sum [sha256.Size]byte
	if rd.pin.Sum(sum[:0]); sum != g.Pin {
		return &FormatError{Offset: start, URI: g.Repo, Err: ErrPin}
	}
	return nil
}

// parseEntry decodes a SnapshotEntry or DeltaEntry into e and checks its
// URI. e.Content aliases b, which starts at offset in the input; e.Name
// is the one allocation of an entry.
func (rd *Reader) parseEntry(e *Entry, b []byte, offset int64, withdrawn bool, repo string) error {
	size := len(b)
	delta := rd.isDelta(b, withdrawn)
	if withdrawn && !delta {
		return fmt.Errorf("%w: a withdraw in a snapshot", ErrKind)
	}
	var name []byte
	// fail names the entry in errors found before its URI is built.
	fail := func(err error) error { e.Name = string(name); return err }
	var last protowire.Number
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return fail(fmt.Errorf("%w: entry field", ErrWireType))
		}
		if num <= last {
			return fail(fmt.Errorf("%w: entry field %d after %d", ErrOrder, num, last))
		}
		last = num
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fail(fmt.Errorf("%w: entry field %d", ErrTruncated, num))
		}
		b = b[n:]
		switch {
		case num == fName:
			name = v
		case !delta && num == fDeltaContent:
			return fail(fmt.Errorf("%w: a snapshot entry with field 3", ErrKind))
		case delta && num == fHash:
			if len(v) != sha256.Size {
				return fail(fmt.Errorf("%w: hash of %d bytes", ErrInvalid, len(v)))
			}
			copy(e.Hash[:], v)
			e.HasHash = true
		case delta && num == fDeltaContent, !delta && num == fContent:
			if len(v) > rd.lim.MaxObjectSize {
				return fail(fmt.Errorf("%w: object of %d bytes, limit %d", ErrTooLarge, len(v), rd.lim.MaxObjectSize))
			}
			e.Content, e.HasContent = v, true
			e.Offset = offset + int64(size-len(b)-len(v))
		}
	}
	// One string holds the URI; the name is its tail.
	rd.uri = append(append(rd.uri[:0], repo...), name...)
	uri := string(rd.uri)
	e.Name = uri[len(repo):]
	if strings.IndexByte(e.Name, '/') >= 0 {
		return fmt.Errorf("%w: entry name %q holds a /", ErrInvalid, e.Name)
	}
	if err := rrdpxml.CheckObjectURI(uri, rd.lim.MaxURILen); err != nil {
		return err
	}
	switch {
	case withdrawn && (!e.HasHash || e.HasContent):
		return fmt.Errorf("%w: a withdraw needs a hash and no content", ErrInvalid)
	case !withdrawn && delta && !e.HasContent:
		// A snapshot entry omits an empty content (proto3); a delta
		// entry's content is optional, so a publish always has it.
		return fmt.Errorf("%w: a publish without a content field", ErrInvalid)
	case !withdrawn && len(e.Content) == 0 && rd.lim.RejectEmptyContent:
		return fmt.Errorf("%w: a publish with empty content", ErrInvalid)
	case !delta && e.HasHash:
		return fmt.Errorf("%w: a snapshot entry with a hash", ErrInvalid)
	}
	rd.objs++
	if rd.objs > rd.lim.MaxObjects {
		return fmt.Errorf("%w: more than %d objects", ErrTooLarge, rd.lim.MaxObjects)
	}
	if !rd.seen.Add(uri) {
		return fmt.Errorf("%w: duplicate uri", ErrInvalid)
	}
	return nil
}

// isDelta settles the kind from the first entry when the caller did not
// say: only a DeltaEntry has field 3 (content) or sits in the withdrawn
// list; only a SnapshotEntry has a content in field 2 without field 3.
func (rd *Reader) isDelta(b []byte, withdrawn bool) bool {
	if rd.hdr.Kind != 0 {
		return rd.hdr.Kind == rrdpxml.KindDelta
	}
	delta := withdrawn
	for len(b) > 0 && !delta {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			break
		}
		delta = num == fDeltaContent
		b = b[n:]
	}
	rd.hdr.Kind = rrdpxml.KindSnapshot
	if delta {
		rd.hdr.Kind = rrdpxml.KindDelta
	}
	return delta
}
