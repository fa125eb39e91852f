package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

// BenchmarkRPDecode is "rrdp-proxy-bench decode" on synthetic snapshots:
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
	spec := irpkitest.Spec{Seed: 3, Objects: 300, Dirs: 7, Wrap: 64}
	var x, bin bytes.Buffer
	if err := irpkitest.WriteSnapshot(&x, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := irpki.XMLToBin(&bin, bytes.NewReader(x.Bytes()), irpki.Options{}); err != nil {
		t.Fatal(err)
	}
	ts, res, err := timeDecoders(x.Bytes(), bin.Bytes(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != spec.Objects || len(ts) != 3 {
		t.Fatalf("got %d objects and %d timings, want %d and 3", res.Objects, len(ts), spec.Objects)
	}
	var want int64
	for _, o := range irpkitest.Objects(spec) {
		want += int64(len(o.Content))
	}
	if res.Bytes != want {
		t.Errorf("got %d object bytes, want %d", res.Bytes, want)
	}
	bad := bytes.Clone(x.Bytes())
	bad[bytes.Index(bad, []byte("<publish"))+1] = 'x'
	for _, d := range rpDecoders[1:] {
		if _, err := d.parse(bad); err == nil {
			t.Errorf("%s accepts a snapshot with an unknown element", d.name)
		}
	}
	flipped := bytes.Clone(bin.Bytes())
	flipped[len(flipped)/2] ^= 1
	if _, err := decodeBin(flipped); err == nil {
		t.Errorf("the .bin reader accepts a flipped byte")
	}
}

// TestBenchDecode runs the command on a file and on a repository
// directory.
func TestBenchDecode(t *testing.T) {
	dir := t.TempDir()
	writeRepo(t, filepath.Join(dir, "rrdp"), irpkitest.Spec{Seed: 4, Objects: 200})
	file, err := findSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, errOut := runCLI(t, "decode", "--count", "3", "--out", out, dir, file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	md, err := os.ReadFile(filepath.Join(out, "decode.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != stdout {
		t.Errorf("decode.md differs from what was printed")
	}
	for _, want := range []string{"## " + dir + "\n\n200 objects", "## " + file + "\n\n200 objects", "encoding/xml baseline", "101.4 ms"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, _ := runCLI(t, "decode", "--out", "", filepath.Join(dir, "missing.xml")); code != 1 {
		t.Errorf("missing file: got exit %d, want 1", code)
	}
}

// BenchmarkRPDecodeFile is BenchmarkRPDecode on a snapshot.xml or
// repository directory named by RRDP_BENCH_SNAPSHOT (skipped without it):
// RRDP_BENCH_SNAPSHOT=/work/data/paper-1ca go test -bench RPDecodeFile
func BenchmarkRPDecodeFile(b *testing.B) {
	arg := os.Getenv("RRDP_BENCH_SNAPSHOT")
	if arg == "" {
		b.Skip("RRDP_BENCH_SNAPSHOT names no snapshot")
	}
	path, err := findSnapshot(arg)
	if err != nil {
		b.Fatal(err)
	}
	x, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var bin bytes.Buffer
	if _, err := irpki.XMLToBin(&bin, bytes.NewReader(x), irpki.Options{}); err != nil {
		b.Fatal(err)
	}
	for _, d := range rpDecoders {
		b.Run(benchName(d), func(b *testing.B) {
			data := inputOf(d, x, bin.Bytes())
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
