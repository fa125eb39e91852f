package irpki

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// The two entry lists of a group: CA.entries or DeltaCA.modified, and
// DeltaCA.withdrawn.
const (
	listModified = iota
	listWithdrawn
)

// seg is a run of encoded entries in the arena.
type seg struct{ off, n int64 }

// group is one publication point while it is being built.
type group struct {
	repo string
	segs [2][]seg
	size [2]int64 // bytes of encoded entries in each list
	pin  [32]byte
}

// bodySize is the size of the group's encoding without the pin field.
func (g *group) bodySize() int64 {
	n := g.size[0] + g.size[1]
	if g.repo != "" {
		n += int64(protowire.SizeTag(fRepo) + protowire.SizeBytes(len(g.repo)))
	}
	return n
}

// pinFieldSize is the size of the pin field: tag, length, 32 bytes.
var pinFieldSize = int64(protowire.SizeTag(fPin) + protowire.SizeBytes(sha256.Size))

// builder collects the entries of a snapshot or delta in an arena, grouped
// per publication point, and writes the .bin once the input is read.
type builder struct {
	kind    rrdpxml.Kind
	session string
	serial  uint64
	arena   arena
	groups  []group
	index   map[string]int32
	hdr     []byte // scratch for one entry's header
	objects int
	types   map[string]int
}

func newBuilder(h rrdpxml.Header, session string) *builder {
	if session == "" {
		session = h.SessionID
	}
	return &builder{
		kind:    h.Kind,
		session: session,
		serial:  h.Serial,
		index:   make(map[string]int32),
		types:   make(map[string]int),
	}
}

// add encodes one publish or withdraw as a SnapshotEntry or DeltaEntry and
// appends it to its group.
func (b *builder) add(el *rrdpxml.Element) {
	repo, name := splitURI(el.URI)
	gi, ok := b.index[repo]
	if !ok {
		gi = int32(len(b.groups))
		b.groups = append(b.groups, group{repo: repo})
		b.index[repo] = gi
	}
	b.objects++
	b.types[extOf(name)]++

	// SnapshotEntry{name=1, content=2} has proto3 fields: an empty value
	// is omitted. DeltaEntry{name=1, hash=2, content=3} has optional hash
	// and content: present means written, even when empty; a withdraw has
	// no content and goes to the withdrawn list.
	field, list := protowire.Number(fEntries), listModified
	contentField, hasContent, hasHash := protowire.Number(fContent), len(el.Content) > 0, false
	if b.kind != rrdpxml.KindSnapshot {
		contentField, hasContent, hasHash = fDeltaContent, !el.Withdraw, el.HasHash
		if el.Withdraw {
			field, list = fWithdrawn, listWithdrawn
		}
	}
	body := 0
	if name != "" {
		body += protowire.SizeTag(fName) + protowire.SizeBytes(len(name))
	}
	if hasHash {
		body += protowire.SizeTag(fHash) + protowire.SizeBytes(sha256.Size)
	}
	if hasContent {
		body += protowire.SizeTag(contentField) + protowire.SizeBytes(len(el.Content))
	}
	h := protowire.AppendTag(b.hdr[:0], field, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(body))
	if name != "" {
		h = protowire.AppendTag(h, fName, protowire.BytesType)
		h = protowire.AppendString(h, name)
	}
	if hasHash {
		h = protowire.AppendTag(h, fHash, protowire.BytesType)
		h = protowire.AppendBytes(h, el.Hash[:])
	}
	var content []byte
	if hasContent {
		h = protowire.AppendTag(h, contentField, protowire.BytesType)
		h = protowire.AppendVarint(h, uint64(len(el.Content)))
		content = el.Content
	}
	b.hdr = h

	off := b.arena.size
	b.arena.append(h)
	b.arena.append(content)
	n := b.arena.size - off

	g := &b.groups[gi]
	segs := g.segs[list]
	if k := len(segs) - 1; k >= 0 && segs[k].off+segs[k].n == off {
		segs[k].n += n
	} else {
		g.segs[list] = append(segs, seg{off, n})
	}
	g.size[list] += n
}

// eachBody calls fn with the bytes of g's encoding without the pin field.
func (b *builder) eachBody(g *group, fn func([]byte) error) error {
	if g.repo != "" {
		var tmp [16]byte
		f := protowire.AppendTag(tmp[:0], fRepo, protowire.BytesType)
		f = protowire.AppendVarint(f, uint64(len(g.repo)))
		if err := fn(f); err != nil {
			return err
		}
		if err := fn([]byte(g.repo)); err != nil {
			return err
		}
	}
	for _, list := range g.segs {
		for _, s := range list {
			if err := b.arena.each(s.off, s.n, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// pins computes every group's pin in group order, announcing each on done.
func (b *builder) pins(done chan<- int) {
	h := sha256.New()
	write := func(p []byte) error { h.Write(p); return nil }
	for i := range b.groups {
		g := &b.groups[i]
		h.Reset()
		_ = b.eachBody(g, write) // write never fails
		h.Sum(g.pin[:0])
		done <- i
	}
	close(done)
}

// hashWriter counts and hashes what goes through it to an underlying writer.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// writeTo writes the .bin file. The pins are computed by a second goroutine
// running one group ahead of the writer, so that hashing the groups and
// hashing the output overlap on two cores.
func (b *builder) writeTo(w io.Writer) (size int64, sum [32]byte, err error) {
	done := make(chan int, len(b.groups))
	go b.pins(done)
	defer func() {
		for range done { // let the pinner finish on an early return
		}
	}()

	hw := &hashWriter{w: w, h: sha256.New()}
	bw := bufio.NewWriterSize(hw, 256<<10)
	var tmp []byte
	if b.serial != 0 {
		tmp = protowire.AppendTag(tmp, fSerial, protowire.VarintType)
		tmp = protowire.AppendVarint(tmp, b.serial)
	}
	if b.session != "" {
		tmp = protowire.AppendTag(tmp, fSession, protowire.BytesType)
		tmp = protowire.AppendString(tmp, b.session)
	}
	if _, err := bw.Write(tmp); err != nil {
		return 0, sum, err
	}
	write := func(p []byte) error { _, err := bw.Write(p); return err }
	for i := range b.groups {
		g := &b.groups[i]
		body := g.bodySize()
		tmp = protowire.AppendTag(tmp[:0], fCAs, protowire.BytesType)
		tmp = protowire.AppendVarint(tmp, uint64(body+pinFieldSize))
		if err := write(tmp); err != nil {
			return 0, sum, err
		}
		if err := b.eachBody(g, write); err != nil {
			return 0, sum, err
		}
		if j := <-done; j != i {
			return 0, sum, fmt.Errorf("irpki: internal error: pin %d ready while writing group %d", j, i)
		}
		tmp = protowire.AppendTag(tmp[:0], fPin, protowire.BytesType)
		tmp = protowire.AppendBytes(tmp, g.pin[:])
		if err := write(tmp); err != nil {
			return 0, sum, err
		}
	}
	tmp = protowire.AppendTag(tmp[:0], fVersion, protowire.VarintType)
	tmp = protowire.AppendVarint(tmp, Version)
	tmp = protowire.AppendTag(tmp, fKind, protowire.VarintType)
	tmp = protowire.AppendVarint(tmp, fileKind(b.kind))
	if err := write(tmp); err != nil {
		return 0, sum, err
	}
	if err := bw.Flush(); err != nil {
		return 0, sum, err
	}
	hw.h.Sum(sum[:0])
	return hw.n, sum, nil
}

// ErrNotSnapshotOrDelta is returned when a transcode of a snapshot or
// delta is given a notification.
var ErrNotSnapshotOrDelta = errors.New("not a snapshot or delta")

// XMLToBin reads an RRDP snapshot or delta in XML from r, checks it
// strictly (package rrdpxml) and writes its .bin to w. Nothing is written
// before the whole input has been read and accepted, so a rejected input
// leaves w untouched. Memory grows with the output, not with the input.
func XMLToBin(w io.Writer, r io.Reader, opt Options) (*Result, error) {
	dec := rrdpxml.NewDecoder(r, opt.Limits)
	defer dec.Close()
	h, err := dec.Header()
	if err != nil {
		return nil, fmt.Errorf("irpki: cannot read xml header: %w", err)
	}
	if h.Kind != rrdpxml.KindSnapshot && h.Kind != rrdpxml.KindDelta {
		return nil, fmt.Errorf("irpki: cannot transcode xml %s: %w", h.Kind, ErrNotSnapshotOrDelta)
	}
	b := newBuilder(h, opt.Session)
	for {
		el, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("irpki: cannot read xml %s: %w", h.Kind, err)
		}
		b.add(el)
	}
	res := &Result{
		Kind:    h.Kind,
		Session: b.session,
		Serial:  h.Serial,
		Groups:  len(b.groups),
		Objects: b.objects,
		Types:   b.types,
		InSize:  dec.Size(),
		InSum:   dec.Sum(),
	}
	res.OutSize, res.OutSum, err = b.writeTo(w)
	if err != nil {
		return nil, fmt.Errorf("irpki: cannot write %s.bin: %w", h.Kind, err)
	}
	return res, nil
}
