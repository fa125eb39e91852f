package main

import (
	"bytes"
	"sync"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
)

// decodeSpecs are the synthetic snapshots of the decoding benchmarks:
// 10,000 objects of 1-4 KiB, spread over 500 publication points, and all
// in one (the shape of paper-1ca).
var decodeSpecs = []struct {
	name string
	spec irpkitest.Spec
}{
	{"500points", irpkitest.Spec{Seed: 7, Objects: 10000, MinSize: 1024, MaxSize: 4096, Dirs: 500}},
	{"1point", irpkitest.Spec{Seed: 7, Objects: 10000, MinSize: 1024, MaxSize: 4096, Dirs: 1}},
}

type decodeInput struct{ xml, bin []byte }

var decodeInputs = sync.OnceValue(func() map[string]decodeInput {
	m := map[string]decodeInput{}
	for _, s := range decodeSpecs {
		var x, bin bytes.Buffer
		if err := irpkitest.WriteSnapshot(&x, s.spec); err != nil {
			panic(err)
		}
		if _, err := irpki.XMLToBin(&bin, bytes.NewReader(x.Bytes()), irpki.Options{}); err != nil {
			panic(err)
		}
		m[s.name] = decodeInput{x.Bytes(), bin.Bytes()}
	}
	return m
})

// BenchmarkRPDecode is "rrdp-proxy bench decode" on synthetic snapshots:
// go test -bench RPDecode ./cmd/rrdp-proxy
func BenchmarkRPDecode(b *testing.B) {
	for _, s := range decodeSpecs {
		in := decodeInputs()[s.name]
		for _, d := range rpDecoders {
			b.Run(s.name+"/"+benchName(d), func(b *testing.B) {
				data := inputOf(d, in.xml, in.bin)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					res, err := d.parse(data)
					if err != nil || res.Objects != s.spec.Objects {
						b.Fatalf("got %d objects, err %v; want %d", res.Objects, err, s.spec.Objects)
					}
				}
			})
		}
	}
}

func benchName(d rpDecoder) string {
	switch {
	case d.bin:
		return "bin"
	case d.name == rpDecoders[1].name:
		return "rrdpxml"
	}
	return "encodingxml"
}

// TestRPDecodersAgree holds the three decoders to the same result: the
// same objects and bytes, and each the SHA-256 of its own input.
func TestRPDecodersAgree(t *testing.T) {
	in := decodeInputs()["500points"]
	ts, res, err := timeDecoders(in.xml, in.bin, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 10000 || len(ts) != 3 {
		t.Fatalf("got %d objects and %d timings, want 10000 and 3", res.Objects, len(ts))
	}
	var want int64
	for _, o := range irpkitest.Objects(decodeSpecs[0].spec) {
		want += int64(len(o.Content))
	}
	if res.Bytes != want {
		t.Errorf("got %d object bytes, want %d", res.Bytes, want)
	}
	bad := bytes.Clone(in.xml)
	bad[bytes.Index(bad, []byte("<publish"))+1] = 'x'
	for _, d := range rpDecoders[1:] {
		if _, err := d.parse(bad); err == nil {
			t.Errorf("%s accepts a snapshot with an unknown element", d.name)
		}
	}
}
