package irpki

import (
	"fmt"
	"io"
)

// Transcode converts a snapshot or delta from format from to format to.
// When both are the same it rewrites the file in its canonical form
// through the other format (checking everything on the way), so that
// "xml to xml" gives exactly the XML an edge node regenerates.
func Transcode(w io.Writer, r io.Reader, from, to Format, opt Options) (*Result, error) {
	switch {
	case from == FormatXML && to == FormatBin:
		return XMLToBin(w, r, opt)
	case from == FormatBin && to == FormatXML:
		return BinToXML(w, r, opt)
	case from != to:
		return nil, fmt.Errorf("irpki: cannot transcode %v to %v", from, to)
	}
	other := FormatBin
	if from == FormatBin {
		other = FormatXML
	}
	pr, pw := io.Pipe()
	first := make(chan *Result, 1)
	go func() {
		res, err := Transcode(pw, r, from, other, opt)
		first <- res
		pw.CloseWithError(err)
	}()
	res, err := Transcode(w, pr, other, to, Options{Limits: opt.Limits})
	pr.CloseWithError(io.ErrClosedPipe) // unblock the first stage on an early return
	in := <-first
	if err != nil {
		return nil, err
	}
	res.InSize, res.InSum = in.InSize, in.InSum
	return res, nil
}
