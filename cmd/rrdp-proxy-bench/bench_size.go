package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"sync"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// gzipLevel is the level of every gzip size the bandwidth report gives:
// compress/gzip's default, no name, no time, so the output is a function
// of the input.
const gzipLevel = 6

// sizes are the bytes of one RRDP file in the four encodings the report
// compares, and of the XML an edge node regenerates from the .bin.
type sizes struct {
	XML, XMLGz, Bin, BinGz int64
	// EdgeXML and EdgeXMLGz are the XML regenerated from the .bin under the
	// derived session, as an edge node serves it.
	EdgeXML, EdgeXMLGz int64
}

func (s sizes) add(o sizes) sizes {
	return sizes{s.XML + o.XML, s.XMLGz + o.XMLGz, s.Bin + o.Bin, s.BinGz + o.BinGz, s.EdgeXML + o.EdgeXML, s.EdgeXMLGz + o.EdgeXMLGz}
}

// scale multiplies every field by f, rounding to the byte.
func (s sizes) scale(f float64) sizes {
	r := func(v int64) int64 { return int64(float64(v)*f + 0.5) }
	return sizes{r(s.XML), r(s.XMLGz), r(s.Bin), r(s.BinGz), r(s.EdgeXML), r(s.EdgeXMLGz)}
}

// format returns the bytes in format i of formats.
func (s sizes) format(i int) int64 {
	return [...]int64{s.XML, s.XMLGz, s.Bin, s.BinGz}[i]
}

// formats names the four encodings, in the order of sizes.format.
var formats = []string{"XML", "XML+gzip", ".bin", ".bin+gzip"}

// byteCounter counts the bytes written to it.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) { *c += byteCounter(len(p)); return len(p), nil }

// gzipSize returns the length of b compressed with gzip at gzipLevel.
func gzipSize(b []byte) int64 {
	var n byteCounter
	zw, err := gzip.NewWriterLevel(&n, gzipLevel)
	if err != nil {
		panic(err) // gzipLevel is valid
	}
	zw.Write(b) // a byteCounter does not fail
	zw.Close()
	return int64(n)
}

// measureFile measures a snapshot or delta given as XML: it transcodes it
// to .bin with the project's transcoder, regenerates the edge's XML from
// that .bin, and compresses all three, in parallel where it can.
func measureFile(x []byte) (sizes, [32]byte, error) {
	s := sizes{XML: int64(len(x))}
	var wg sync.WaitGroup
	wg.Go(func() { s.XMLGz = gzipSize(x) })
	defer wg.Wait()
	var bin bytes.Buffer
	bin.Grow(len(x))
	res, err := irpki.XMLToBin(&bin, bytes.NewReader(x), irpki.Options{})
	if err != nil {
		return sizes{}, [32]byte{}, fmt.Errorf("transcode to .bin: %w", err)
	}
	s.Bin = int64(bin.Len())
	wg.Go(func() { s.BinGz = gzipSize(bin.Bytes()) })
	var edge bytes.Buffer
	edge.Grow(len(x))
	if _, err := irpki.BinToXML(&edge, bytes.NewReader(bin.Bytes()), irpki.Options{Session: irpki.DerivedSession(res.Session)}); err != nil {
		return sizes{}, [32]byte{}, fmt.Errorf("regenerate xml from .bin: %w", err)
	}
	s.EdgeXML = int64(edge.Len())
	s.EdgeXMLGz = gzipSize(edge.Bytes())
	wg.Wait()
	return s, res.OutSum, nil
}

// measureNotification measures a notification: the XML as given, the
// notification.bin that names the .bin files (sums gives their hashes;
// only the lengths of the URIs and hashes matter for the size), and the
// XML notification an edge node serves under the derived session.
func measureNotification(x []byte, base string, sums irpki.Sums) (sizes, error) {
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(x), rrdpxml.Limits{})
	if err != nil {
		return sizes{}, fmt.Errorf("decode notification: %w", err)
	}
	bin, err := irpki.MarshalNotification(irpki.MapNotification(n, base, irpki.FormatBin, sums))
	if err != nil {
		return sizes{}, fmt.Errorf("encode notification.bin: %w", err)
	}
	edgeN := *n
	edgeN.SessionID = irpki.DerivedSession(n.SessionID)
	var edge bytes.Buffer
	if err := rrdpxml.EncodeNotification(&edge, irpki.MapNotification(&edgeN, base, irpki.FormatXML, sums)); err != nil {
		return sizes{}, fmt.Errorf("encode edge notification: %w", err)
	}
	return sizes{
		XML: int64(len(x)), XMLGz: gzipSize(x),
		Bin: int64(len(bin)), BinGz: gzipSize(bin),
		EdgeXML: int64(edge.Len()), EdgeXMLGz: gzipSize(edge.Bytes()),
	}, nil
}
