package irpki_test

import (
	"bytes"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
)

// FuzzBinToXML feeds arbitrary bytes to the .bin decoder. It must never
// panic, and whatever it accepts must come back the same through
// XML -> .bin -> XML (the canonical form is a fixed point).
func FuzzBinToXML(f *testing.F) {
	for _, spec := range []irpkitest.Spec{{Seed: 1, Objects: 3, MinSize: 1, MaxSize: 20}, {Seed: 2, Objects: 5, Dirs: 2, MinSize: 5, MaxSize: 9}} {
		x := synthSnapshot(f, spec)
		b, _ := toBin(f, x)
		f.Add(b)
		f.Add(b[:len(b)/2])
		d, _ := toBin(f, synthDelta(f, irpkitest.Spec{Seed: spec.Seed, Objects: 20, MinSize: 1, MaxSize: 8}))
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var x1 bytes.Buffer
		if _, err := irpki.BinToXML(&x1, bytes.NewReader(in), irpki.Options{}); err != nil {
			return
		}
		var b2, x2 bytes.Buffer
		if _, err := irpki.XMLToBin(&b2, bytes.NewReader(x1.Bytes()), irpki.Options{}); err != nil {
			t.Fatalf("our own XML is rejected: %v\n%s", err, x1.Bytes())
		}
		if _, err := irpki.BinToXML(&x2, bytes.NewReader(b2.Bytes()), irpki.Options{}); err != nil {
			t.Fatalf("our own .bin is rejected: %v", err)
		}
		if !bytes.Equal(x1.Bytes(), x2.Bytes()) {
			t.Fatalf("canonical XML is not a fixed point")
		}
	})
}

// FuzzXMLToBin feeds arbitrary XML to the transcoder: no panic, and an
// accepted file round-trips to the same .bin.
func FuzzXMLToBin(f *testing.F) {
	f.Add(synthSnapshot(f, irpkitest.Spec{Seed: 1, Objects: 3, MinSize: 1, MaxSize: 20}))
	f.Add(synthDelta(f, irpkitest.Spec{Seed: 1, Objects: 9, MinSize: 1, MaxSize: 20}))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b1 bytes.Buffer
		if _, err := irpki.XMLToBin(&b1, bytes.NewReader(in), irpki.Options{}); err != nil {
			return
		}
		var x bytes.Buffer
		if _, err := irpki.BinToXML(&x, bytes.NewReader(b1.Bytes()), irpki.Options{}); err != nil {
			t.Fatalf("our own .bin is rejected: %v", err)
		}
		var b2 bytes.Buffer
		if _, err := irpki.XMLToBin(&b2, bytes.NewReader(x.Bytes()), irpki.Options{}); err != nil {
			t.Fatalf("our own XML is rejected: %v", err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatal("xml -> bin -> xml -> bin changed the .bin")
		}
	})
}
