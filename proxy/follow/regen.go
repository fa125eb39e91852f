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
// returns.
func regenerate(objs iter.Seq2[string, object], xs, bs string, serial uint64, lim rrdpxml.Limits) (xml, bin []byte, err error) {
	pr, pw := io.Pipe()
	var bbuf bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := irpki.XMLToBin(&bbuf, pr, irpki.Options{Limits: lim, Session: bs})
		pr.CloseWithError(err) // a transcoder that stops early stops the writer too
		done <- err
	}()
	var buf bytes.Buffer
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
