package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
)

const demoAbout = `Run rrdp-proxy on an embedded default, with no network and no Redis.

For now it builds a synthetic repository snapshot in memory (random object
bytes), transcodes it to the iRPKI .bin layout and back, checks the round
trip, and prints the sizes and speeds. It grows into the full offline proxy
demo (local origin, proxy, sync through .bin) as the daemon lands.`

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "", demoAbout, stderr)
	objects := fs.Int("objects", 20000, "objects in the synthetic snapshot")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	var x bytes.Buffer
	if err := irpkitest.WriteSnapshot(&x, irpkitest.Spec{Seed: 1, Objects: *objects}); err != nil {
		return err
	}
	// Output buffers are sized up front, so that the speeds printed are the
	// codec's and not the buffers' growth.
	var bin bytes.Buffer
	bin.Grow(x.Len())
	start := time.Now()
	res, err := irpki.XMLToBin(&bin, bytes.NewReader(x.Bytes()), irpki.Options{})
	if err != nil {
		return err
	}
	toBin := time.Since(start)
	var back bytes.Buffer
	back.Grow(x.Len() + x.Len()/8)
	start = time.Now()
	if _, err := irpki.BinToXML(&back, bytes.NewReader(bin.Bytes()), irpki.Options{}); err != nil {
		return err
	}
	toXML := time.Since(start)
	var again bytes.Buffer
	if _, err := irpki.XMLToBin(&again, bytes.NewReader(back.Bytes()), irpki.Options{}); err != nil {
		return err
	}
	if !bytes.Equal(again.Bytes(), bin.Bytes()) {
		return fmt.Errorf("round trip changed the .bin")
	}
	mb := func(n int) float64 { return float64(n) / 1e6 }
	fmt.Fprintf(stdout, "synthetic snapshot: session %s serial %d, %d objects in %d publication points\n",
		res.Session, res.Serial, res.Objects, res.Groups)
	fmt.Fprintf(stdout, "snapshot.xml     %8.1f MB   (gzip %8.1f MB)\n", mb(x.Len()), mb(gzipLen(x.Bytes())))
	fmt.Fprintf(stdout, "snapshot.bin     %8.1f MB   (gzip %8.1f MB)   %.1f%% of the XML\n",
		mb(bin.Len()), mb(gzipLen(bin.Bytes())), 100*float64(bin.Len())/float64(x.Len()))
	fmt.Fprintf(stdout, "xml -> bin       %8.0f MB/s (input)\n", mb(x.Len())/toBin.Seconds())
	fmt.Fprintf(stdout, "bin -> xml       %8.0f MB/s (input)\n", mb(bin.Len())/toXML.Seconds())
	fmt.Fprintf(stdout, "round trip xml -> bin -> xml -> bin: identical .bin\n")
	return nil
}

func gzipLen(b []byte) int {
	var n countWriter
	zw := gzip.NewWriter(&n)
	zw.Write(b)
	zw.Close()
	return int(n)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
