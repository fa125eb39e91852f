package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"time"
)

// Part is one piece of a composite file: a blob (Sum, Size), or a few
// bytes kept in the part list itself (Data, Sum zero), such as the header
// of a snapshot, which changes with every serial.
type Part struct {
	Sum  [32]byte
	Size int64
	Data []byte
}

// partsMagic opens an encoded part list; its last byte is the version.
var partsMagic = []byte("rrdp-proxy parts\x01")

// maxInline caps the bytes a part list keeps inline, per part.
const maxInline = 64 << 10

// EncodeParts encodes a part list: partsMagic, the count, then per part a
// tag (0: blob, 1: inline) with the sum and size, or the length and the
// bytes; integers as uvarints. The same list gives the same bytes.
func EncodeParts(parts []Part) []byte {
	n := len(partsMagic) + binary.MaxVarintLen64
	for _, p := range parts {
		n += 1 + 32 + binary.MaxVarintLen64 + len(p.Data)
	}
	b := make([]byte, 0, n)
	b = append(b, partsMagic...)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		if p.Sum == ([32]byte{}) {
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(p.Data)))
			b = append(b, p.Data...)
			continue
		}
		b = append(b, 0)
		b = append(b, p.Sum[:]...)
		b = binary.AppendUvarint(b, uint64(p.Size))
	}
	return b
}

// ErrParts reports a part list that cannot be decoded.
var ErrParts = errors.New("bad part list")

// DecodeParts decodes a part list made by EncodeParts. Inline data
// aliases b.
func DecodeParts(b []byte) ([]Part, error) {
	var parts []Part
	err := walkParts(b, func(count uint64) { parts = make([]Part, 0, count) }, func(p Part) { parts = append(parts, p) })
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// AppendPartSums appends to dst the sums of the blobs a part list made by
// EncodeParts names, in order, and checks it as DecodeParts does; it
// allocates nothing beyond dst's growth, for a pass over many lists
// (diskstore's cap).
func AppendPartSums(dst [][32]byte, b []byte) ([][32]byte, error) {
	n := len(dst)
	err := walkParts(b, func(count uint64) { dst = slices.Grow(dst, int(count)) }, func(p Part) {
		if p.Sum != ([32]byte{}) {
			dst = append(dst, p.Sum)
		}
	})
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// walkParts checks a part list made by EncodeParts and calls start with
// its count, then part with each part (inline data aliasing b).
func walkParts(b []byte, start func(count uint64), part func(Part)) error {
	if len(b) < len(partsMagic) || string(b[:len(partsMagic)]) != string(partsMagic) {
		return fmt.Errorf("%w: no magic", ErrParts)
	}
	off := len(partsMagic)
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b[off:])
		if n <= 0 || n != uvarintLen(v) {
			return 0, fmt.Errorf("%w: %s at byte %d", ErrParts, what, off)
		}
		off += n
		return v, nil
	}
	count, err := uv("count")
	if err != nil {
		return err
	}
	// Every part takes two bytes at least (a tag and a length or more):
	// a count above that is refused before anything is sized for it.
	if count > uint64(len(b)-off)/2 {
		return fmt.Errorf("%w: %d parts in %d bytes", ErrParts, count, len(b))
	}
	start(count)
	for i := range count {
		if off >= len(b) {
			return fmt.Errorf("%w: part %d: truncated at byte %d", ErrParts, i, off)
		}
		tag := b[off]
		off++
		var p Part
		switch tag {
		case 0:
			if len(b)-off < 32 {
				return fmt.Errorf("%w: part %d: truncated sum at byte %d", ErrParts, i, off)
			}
			copy(p.Sum[:], b[off:off+32])
			if p.Sum == ([32]byte{}) {
				// A zero sum is how a decoded Part says inline: a blob
				// part with one would come back encoded as inline data.
				return fmt.Errorf("%w: part %d: zero sum at byte %d", ErrParts, i, off)
			}
			off += 32
			size, err := uv("size")
			if err != nil {
				return err
			}
			if size > 1<<40 {
				return fmt.Errorf("%w: part %d: size %d", ErrParts, i, size)
			}
			p.Size = int64(size)
		case 1:
			n, err := uv("length")
			if err != nil {
				return err
			}
			if n > maxInline || n > uint64(len(b)-off) {
				return fmt.Errorf("%w: part %d: %d inline bytes at byte %d", ErrParts, i, n, off)
			}
			p.Data, p.Size = b[off:off+int(n)], int64(n)
			off += int(n)
		default:
			return fmt.Errorf("%w: part %d: tag %d at byte %d", ErrParts, i, tag, off-1)
		}
		part(p)
	}
	if off != len(b) {
		return fmt.Errorf("%w: %d bytes after the last part", ErrParts, len(b)-off)
	}
	return nil
}

// uvarintLen is the length of v's shortest uvarint: a longer encoding of
// the same value is refused, so that a list has one encoding.
func uvarintLen(v uint64) int {
	return max(1, (bits.Len64(v)+6)/7)
}

// Getter returns the blob stored under a sum.
type Getter func(ctx context.Context, sum [32]byte) ([]byte, error)

// FileParts returns the parts of f: for a composite file those of its
// part list, read with get; otherwise the one blob f.Sum.
func FileParts(ctx context.Context, f *File, get Getter) ([]Part, error) {
	if !f.Composite() {
		return []Part{{Sum: f.Sum, Size: f.Size}}, nil
	}
	b, err := get(ctx, f.Index)
	if err != nil {
		return nil, fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	parts, err := DecodeParts(b)
	if err != nil {
		return nil, fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	return parts, nil
}

// Needed returns the blobs h needs at now, without repeats: those of its
// live files (File.Live), and for a composite file its part list and its
// parts, read with get. A part list that cannot be read is an error: a
// head is checked with Needed before it is written.
func Needed(ctx context.Context, h *Head, now time.Time, get Getter) ([][32]byte, error) {
	return needed(ctx, h, now, get, false)
}

// NeededLax is Needed for what a store keeps or repairs (GC, lists of
// missing blobs): a part list that cannot be read counts as needed
// itself, and its parts, unknown, are left out. One lost list then
// neither stops a collection nor hides what a repair must put back
// first.
func NeededLax(ctx context.Context, h *Head, now time.Time, get Getter) [][32]byte {
	sums, _ := needed(ctx, h, now, get, true)
	return sums
}

func needed(ctx context.Context, h *Head, now time.Time, get Getter, lax bool) ([][32]byte, error) {
	seen := make(map[[32]byte]bool, len(h.Files))
	var sums [][32]byte
	add := func(s [32]byte) {
		if !seen[s] {
			seen[s] = true
			sums = append(sums, s)
		}
	}
	for i := range h.Files {
		f := &h.Files[i]
		if !f.Live(now) {
			continue
		}
		add(f.Key())
		if !f.Composite() {
			continue
		}
		parts, err := FileParts(ctx, f, get)
		if err != nil {
			if lax {
				continue
			}
			return nil, err
		}
		for _, p := range parts {
			if p.Sum != ([32]byte{}) {
				add(p.Sum)
			}
		}
	}
	return sums, nil
}

// WriteParts writes the bytes of parts from offset off on, n bytes, to w,
// reading blobs with get. It returns the bytes written.
func WriteParts(ctx context.Context, w io.Writer, parts []Part, off, n int64, get Getter) (int64, error) {
	var done int64
	for _, p := range parts {
		if n <= 0 {
			break
		}
		if off >= p.Size {
			off -= p.Size
			continue
		}
		b := p.Data
		if p.Sum != ([32]byte{}) {
			var err error
			if b, err = get(ctx, p.Sum); err != nil {
				return done, err
			}
			if int64(len(b)) != p.Size {
				return done, fmt.Errorf("part %x: %d bytes, the list says %d: %w", p.Sum[:8], len(b), p.Size, ErrParts)
			}
		}
		b = b[off:]
		off = 0
		if int64(len(b)) > n {
			b = b[:n]
		}
		m, err := w.Write(b)
		done += int64(m)
		n -= int64(m)
		if err != nil {
			return done, err
		}
	}
	if n > 0 {
		return done, fmt.Errorf("%d bytes past the last part: %w", n, ErrParts)
	}
	return done, nil
}

// ReadFile returns the bytes of f read with get: its blob, or for a
// composite file its parts assembled into one slice of f.Size bytes.
func ReadFile(ctx context.Context, f *File, get Getter) ([]byte, error) {
	if !f.Composite() {
		return get(ctx, f.Sum)
	}
	parts, err := FileParts(ctx, f, get)
	if err != nil {
		return nil, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, f.Size))
	if _, err := WriteParts(ctx, buf, parts, 0, f.Size, get); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return buf.Bytes(), nil
}
