package rrdpxml

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"testing"
)

// benchSize is the size of the synthetic snapshots of the benchmarks.
const benchSize = 64 << 20

var benchShapes = []struct {
	name string
	wrap int
}{
	{"unwrapped", 0},
	{"wrapped64", 64},
}

// BenchmarkDecoder measures the decoder alone: scanning, base64 decoding
// and SHA-256 of the input, on a 64 MB snapshot of 1-4 KiB objects.
func BenchmarkDecoder(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			in, n := generate(genSpec{seed: 1, size: benchSize, wrap: s.wrap})
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				got, _, err := decodeAll(in)
				if err != nil || got != n {
					b.Fatalf("decoded %d elements, err %v; want %d", got, err, n)
				}
			}
		})
	}
}

func decodeAll(in []byte) (int, [32]byte, error) {
	d := NewDecoder(bytes.NewReader(in), Limits{})
	defer d.Close()
	n := 0
	for {
		_, err := d.Next()
		if err == io.EOF {
			return n, d.Sum(), nil
		}
		if err != nil {
			return n, [32]byte{}, err
		}
		n++
	}
}

// BenchmarkEncodingXML is the baseline: the same work done with
// encoding/xml (Token loop, base64 decoding, SHA-256 through a TeeReader).
func BenchmarkEncodingXML(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			in, n := generate(genSpec{seed: 1, size: benchSize, wrap: s.wrap})
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				got, sum, err := decodeWithEncodingXML(bytes.NewReader(in))
				if err != nil || got != n || sum != sha256.Sum256(in) {
					b.Fatalf("decoded %d elements, err %v; want %d", got, err, n)
				}
			}
		})
	}
}

// decodeWithEncodingXML is a plain encoding/xml decoder of a snapshot or
// delta, as one would write it without this package.
func decodeWithEncodingXML(r io.Reader) (int, [32]byte, error) {
	h := sha256.New()
	dec := xml.NewDecoder(io.TeeReader(r, h))
	var text, obj []byte
	inPublish := false
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, [32]byte{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "publish":
				inPublish, text = true, text[:0]
			case "withdraw":
				n++
			}
			for _, a := range t.Attr {
				_ = a.Value
			}
		case xml.CharData:
			if inPublish {
				text = append(text, t...)
			}
		case xml.EndElement:
			if t.Name.Local == "publish" {
				obj = append(obj[:0], make([]byte, base64.StdEncoding.DecodedLen(len(text)))...)
				if _, err := base64.StdEncoding.Decode(obj, bytes.TrimSpace(text)); err != nil {
					return n, [32]byte{}, fmt.Errorf("publish %d: %w", n, err)
				}
				inPublish = false
				n++
			}
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return n, sum, nil
}

// BenchmarkWriter measures the canonical encoder, writing the elements of
// the unwrapped benchmark snapshot; bytes are output bytes.
func BenchmarkWriter(b *testing.B) {
	in, _ := generate(genSpec{seed: 1, size: benchSize})
	hdr, els := collect(b, in)
	var out countingWriter
	w, err := NewWriter(&out, hdr)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range els {
		if err := w.Publish(e.URI, e.hash(), e.Content); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(out.n)
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, hdr)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range els {
			if err := w.Publish(e.URI, e.hash(), e.Content); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// The machine's reference speeds, for reading the figures above.
func BenchmarkSHA256(b *testing.B) {
	in := make([]byte, 1<<20)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		sha256.Sum256(in)
	}
}

func BenchmarkBase64Decode(b *testing.B) {
	src := make([]byte, 3<<18)
	enc := []byte(base64.StdEncoding.EncodeToString(src))
	dst := make([]byte, len(src))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := base64.StdEncoding.Decode(dst, enc); err != nil {
			b.Fatal(err)
		}
	}
}
