package rrdpxml

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// elem is a decoded element, copied out of the decoder.
type elem struct {
	Withdraw bool
	URI      string
	Hash     [32]byte
	HasHash  bool
	Content  []byte
}

func (e *elem) hash() *[32]byte {
	if !e.HasHash {
		return nil
	}
	return &e.Hash
}

// decodeElems decodes a whole snapshot or delta.
func decodeElems(r io.Reader, lim Limits) (Header, []elem, [32]byte, error) {
	d := NewDecoder(r, lim)
	defer d.Close()
	h, err := d.Header()
	if err != nil {
		return h, nil, [32]byte{}, err
	}
	var els []elem
	for {
		e, err := d.Next()
		if err == io.EOF {
			return h, els, d.Sum(), nil
		}
		if err != nil {
			return h, els, [32]byte{}, err
		}
		els = append(els, elem{e.Withdraw, e.URI, e.Hash, e.HasHash, bytes.Clone(e.Content)})
	}
}

func collect(tb testing.TB, in []byte) (Header, []elem) {
	tb.Helper()
	h, els, _, err := decodeElems(bytes.NewReader(in), Limits{})
	if err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return h, els
}

// encodeElems writes elements with the Writer.
func encodeElems(h Header, els []elem) ([]byte, error) {
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		return nil, err
	}
	for _, e := range els {
		if e.Withdraw {
			err = w.Withdraw(e.URI, e.Hash)
		} else {
			err = w.Publish(e.URI, e.hash(), e.Content)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// roundTrip encodes what was decoded, decodes it again and compares.
func roundTrip(h Header, els []elem) error {
	out, err := encodeElems(h, els)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	h2, els2, _, err := decodeElems(bytes.NewReader(out), Limits{})
	if err != nil {
		return fmt.Errorf("decode the encoding: %w\n%s", err, out)
	}
	if h2 != h {
		return fmt.Errorf("header after round trip %+v, want %+v", h2, h)
	}
	if len(els2) != len(els) {
		return fmt.Errorf("%d elements after round trip, want %d", len(els2), len(els))
	}
	for i := range els {
		a, b := els[i], els2[i]
		if len(a.Content) == 0 && len(b.Content) == 0 {
			a.Content, b.Content = nil, nil
		}
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("element %d after round trip %+v, want %+v", i, b, a)
		}
	}
	out2, err := encodeElems(h2, els2)
	if err != nil {
		return fmt.Errorf("encode again: %w", err)
	}
	if !bytes.Equal(out, out2) {
		return fmt.Errorf("encoding not stable over a round trip")
	}
	return nil
}

func TestRoundTripSynthetic(t *testing.T) {
	for _, g := range []genSpec{
		{seed: 1, kind: KindSnapshot, size: 1 << 20},
		{seed: 2, kind: KindSnapshot, size: 1 << 20, wrap: 64},
		{seed: 3, kind: KindDelta, size: 1 << 20, wrap: 76},
		{seed: 4, kind: KindDelta, size: 1 << 20, objects: 100, minObj: 1, maxObj: 40},
		{seed: 5, kind: KindSnapshot, objects: 3, minObj: 600 << 10, maxObj: 700 << 10},
	} {
		t.Run(fmt.Sprintf("%v-%d", g.kind, g.seed), func(t *testing.T) {
			in, n := generate(g)
			h, els := collect(t, in)
			if len(els) != n {
				t.Fatalf("decoded %d elements, want %d", len(els), n)
			}
			if err := roundTrip(h, els); err != nil {
				t.Fatal(err)
			}
		})
	}
}
