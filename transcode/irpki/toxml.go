package irpki

import (
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// BinToXML reads a snapshot.bin or delta.bin from r, checks every group's
// pin and every entry, and writes the canonical XML of package rrdpxml to
// w, under opt.Session when set. The XML is written as the groups are
// read: a caller that must not publish a partial file writes to a buffer
// or a temporary file and keeps it only when BinToXML returns no error.
func BinToXML(w io.Writer, r io.Reader, opt Options) (*Result, error) {
	rd := NewReader(r, 0, opt.Limits)
	h, err := rd.Header()
	if err != nil {
		return nil, fmt.Errorf("irpki: cannot read .bin header: %w", err)
	}
	session := h.SessionID
	if opt.Session != "" {
		session = opt.Session
	}
	res := &Result{Session: session, Serial: h.Serial, Types: make(map[string]int)}
	var xw *rrdpxml.Writer
	hw := &hashWriter{w: w, h: sha256.New()}
	open := func() error {
		if xw != nil {
			return nil
		}
		var err error
		xw, err = rrdpxml.NewWriter(hw, rrdpxml.Header{Kind: rd.Kind(), SessionID: session, Serial: h.Serial})
		return err
	}
	for {
		g, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("irpki: cannot read .bin: %w", err)
		}
		if err := open(); err != nil {
			return nil, fmt.Errorf("irpki: cannot write xml: %w", err)
		}
		res.Groups++
		for i := range g.Entries {
			e := &g.Entries[i]
			var hash *[32]byte
			if e.HasHash {
				hash = &e.Hash
			}
			if err := xw.Publish(g.Repo+e.Name, hash, e.Content); err != nil {
				return nil, fmt.Errorf("irpki: cannot write xml: %w", err)
			}
			res.Types[extOf(e.Name)]++
		}
		for i := range g.Withdrawn {
			e := &g.Withdrawn[i]
			if err := xw.Withdraw(g.Repo+e.Name, e.Hash); err != nil {
				return nil, fmt.Errorf("irpki: cannot write xml: %w", err)
			}
			res.Types[extOf(e.Name)]++
		}
		res.Objects += len(g.Entries) + len(g.Withdrawn)
	}
	if err := open(); err != nil { // a file without groups
		return nil, fmt.Errorf("irpki: cannot write xml: %w", err)
	}
	if err := xw.Close(); err != nil {
		return nil, fmt.Errorf("irpki: cannot write xml: %w", err)
	}
	res.Kind = rd.Kind()
	res.InSize, res.InSum = rd.Size(), rd.Sum()
	res.OutSize = hw.n
	hw.h.Sum(res.OutSum[:0])
	return res, nil
}
