package follow

import (
	"bytes"
	"fmt"
	"io"
	"iter"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// regenerate writes the snapshot of objs at serial, canonical XML under
// session xs and its .bin under bs. The .bin is transcoded from the XML
// while it is written, in a second goroutine that ends before regenerate
// returns. size is the expected size of the XML: the buffers are
// allocated once, not doubled up to twice the size.
func regenerate(objs iter.Seq2[string, object], size int, xs, bs string, serial uint64, lim rrdpxml.Limits) (xml, bin []byte, err error) {
	pr, pw := io.Pipe()
	var bbuf bytes.Buffer
	bbuf.Grow(size * 4 / 5) // .bin drops base64 and most markup
	done := make(chan error, 1)
	go func() {
		_, err := irpki.XMLToBin(&bbuf, pr, irpki.Options{Limits: lim, Session: bs})
		pr.CloseWithError(err) // a transcoder that stops early stops the writer too
		done <- err
	}()
	var buf bytes.Buffer
	buf.Grow(size)
	werr := func() error {
		w, err := rrdpxml.NewWriter(io.MultiWriter(&buf, pw), rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: xs, Serial: serial})
		if err != nil {
			return err
		}
		for u, o := range objs {
			if err := w.Publish(u, nil, o.content); err != nil {
				return err
			}
		}
		return w.Close()
	}()
	pw.CloseWithError(werr)
	terr := <-done
	if werr != nil {
		return nil, nil, fmt.Errorf("regenerate snapshot %d: %w", serial, werr)
	}
	if terr != nil {
		return nil, nil, fmt.Errorf("regenerate snapshot %d: transcode to .bin: %w", serial, terr)
	}
	return buf.Bytes(), bbuf.Bytes(), nil
}

// xmlSize estimates the size of the snapshot XML of objs, an upper bound
// for unwrapped base64.
func xmlSize(objs map[string]object, changes map[string]*object) int {
	n := 256
	add := func(uri string, o object) { n += len(uri) + (len(o.content)+2)/3*4 + 32 }
	for u, o := range objs {
		if _, ch := changes[u]; !ch {
			add(u, o)
		}
	}
	for u, o := range changes {
		if o != nil {
			add(u, *o)
		}
	}
	return n
}
