package irpki_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// benchSpec is a snapshot of about 70 MB: 20,000 objects of 1-4 KiB in
// 1,000 publication points, the shape of a real RIR snapshot.
var benchSpec = irpkitest.Spec{Seed: 42, Objects: 20000, MinSize: 1024, MaxSize: 4096, Dirs: 1000}

var benchXML = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	if err := irpkitest.WriteSnapshot(&b, benchSpec); err != nil {
		panic(err)
	}
	return b.Bytes()
})

// BenchmarkXMLToBin is snapshot.xml -> snapshot.bin with our streaming
// decoder, including the SHA-256 of the input and of the output.
func BenchmarkXMLToBin(b *testing.B) {
	x := benchXML()
	var out bytes.Buffer
	out.Grow(len(x))
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if _, err := irpki.XMLToBin(&out, bytes.NewReader(x), irpki.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len())/float64(len(x)), "bin/xml")
}

// BenchmarkXMLToBinEncodingXML is the baseline the issue measures us
// against: the same job done the straightforward way, with encoding/xml
// tokens, base64 decoding, the generated protobuf types and proto.Marshal,
// also hashing input and output.
func BenchmarkXMLToBinEncodingXML(b *testing.B) {
	x := benchXML()
	b.SetBytes(int64(len(x)))
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, _, err := encodingXMLToBin(bytes.NewReader(x))
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size)/float64(len(x)), "bin/xml")
}

// encodingXMLToBin is the baseline implementation. It checks far less than
// rrdpxml does (no URI rules, no duplicate check), which only flatters it.
func encodingXMLToBin(r io.Reader) ([]byte, [32]byte, error) {
	hin := sha256.New()
	dec := xml.NewDecoder(io.TeeReader(r, hin))
	snap := &irpkipb.Snapshot{Version: irpki.Version, Kind: irpkipb.FileKind_FILE_KIND_SNAPSHOT}
	groups := map[string]*irpkipb.CA{}
	var uri string
	var text []byte
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, [32]byte{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			for _, a := range t.Attr {
				switch {
				case t.Name.Local == "snapshot" && a.Name.Local == "session_id":
					snap.Session = a.Value
				case t.Name.Local == "snapshot" && a.Name.Local == "serial":
					fmt.Sscan(a.Value, &snap.Serial)
				case t.Name.Local == "publish" && a.Name.Local == "uri":
					uri = a.Value
				}
			}
			text = text[:0]
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			if t.Name.Local != "publish" {
				continue
			}
			content, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(text)), ""))
			if err != nil {
				return nil, [32]byte{}, err
			}
			i := strings.LastIndexByte(uri, '/')
			ca := groups[uri[:i+1]]
			if ca == nil {
				ca = &irpkipb.CA{Repo: uri[:i+1]}
				groups[ca.Repo] = ca
				snap.Cas = append(snap.Cas, ca)
			}
			ca.Entries = append(ca.Entries, &irpkipb.SnapshotEntry{Name: uri[i+1:], Content: content})
		}
	}
	det := proto.MarshalOptions{Deterministic: true}
	for _, ca := range snap.Cas {
		enc, err := det.Marshal(ca)
		if err != nil {
			return nil, [32]byte{}, err
		}
		pin := sha256.Sum256(enc)
		ca.Pin = pin[:]
	}
	out, err := det.Marshal(snap)
	if err != nil {
		return nil, [32]byte{}, err
	}
	return out, sha256.Sum256(out), nil
}

// TestBaselineAgrees keeps the baseline honest: it must produce the very
// bytes our encoder produces, or the comparison would be meaningless.
func TestBaselineAgrees(t *testing.T) {
	x := synthSnapshot(t, irpkitest.Spec{Seed: 8, Objects: 200, Wrap: 76})
	ours, _ := toBin(t, x)
	base, _, err := encodingXMLToBin(bytes.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, base) {
		t.Fatalf("baseline gives %d bytes, ours %d, and they differ", len(base), len(ours))
	}
}

func BenchmarkBinToXML(b *testing.B) {
	bin, _ := toBin(b, benchXML())
	var out bytes.Buffer
	out.Grow(len(benchXML()))
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if _, err := irpki.BinToXML(&out, bytes.NewReader(bin), irpki.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBin is what a relying party does with a snapshot.bin:
// read every group, check its pin and every entry.
func BenchmarkReadBin(b *testing.B) {
	bin, _ := toBin(b, benchXML())
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if err := readAll(bin, 0, rrdpxmlLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// readerSpecs are the shapes BenchmarkReader compares: one publication
// point of 10,000 objects (a big CA, like the paper's 1-CA snapshot: one
// 16 MB group) and 10,000 objects in 2,000 small points.
var readerSpecs = []struct {
	name string
	spec irpkitest.Spec
}{
	{"onegroup", irpkitest.Spec{Seed: 7, Objects: 10000, MinSize: 1024, MaxSize: 2048, Dirs: 1}},
	{"smallgroups", irpkitest.Spec{Seed: 7, Objects: 10000, MinSize: 1024, MaxSize: 2048, Dirs: 2000}},
}

// BenchmarkReader reads a snapshot.bin as a relying party does (every
// pin, name and URI checked, every object touched), beside rrdpxml on the
// snapshot.xml it came from, both hashing their input.
func BenchmarkReader(b *testing.B) {
	for _, rs := range readerSpecs {
		var x bytes.Buffer
		if err := irpkitest.WriteSnapshot(&x, rs.spec); err != nil {
			b.Fatal(err)
		}
		bin, _ := toBin(b, x.Bytes())
		b.Run(rs.name+"/bin", func(b *testing.B) {
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if err := readAll(bin, rrdpxml.KindSnapshot, rrdpxmlLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(rs.name+"/rrdpxml", func(b *testing.B) {
			b.SetBytes(int64(x.Len()))
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				d := rrdpxml.NewDecoder(bytes.NewReader(x.Bytes()), rrdpxmlLimits)
				for {
					if _, err := d.Next(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				_ = d.Sum()
				d.Close()
			}
		})
	}
}

// reportCPU reports the process's CPU time per operation (garbage
// collection and rrdpxml's hashing goroutine included) when the returned
// function runs after the loop.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if cpu := processCPU() - start; cpu > 0 && b.N > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
