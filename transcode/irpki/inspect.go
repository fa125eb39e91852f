package irpki

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Inspection is what Inspect finds in an RRDP file of either format.
type Inspection struct {
	Result
	Format Format
	// Notification is set for a notification file.
	Notification *rrdpxml.Notification
}

// Inspect reads a whole RRDP file of either format and kind, checking it as
// the transcoders do, and counts what it holds. Memory stays bounded: the
// objects are counted, not kept.
func Inspect(r io.Reader, opt Options) (*Inspection, error) {
	br := bufio.NewReaderSize(r, DetectSize)
	prefix, err := br.Peek(DetectSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("irpki: cannot read: %w", err)
	}
	f, kind, err := Detect(prefix)
	if err != nil {
		return nil, err
	}
	in := &Inspection{Format: f}
	in.Kind = kind
	in.Types = make(map[string]int)
	switch {
	case kind == rrdpxml.KindNotification && f == FormatXML:
		dec := rrdpxml.NewDecoder(br, opt.Limits)
		defer dec.Close()
		if _, err := dec.Header(); err != nil {
			return nil, err
		}
		if in.Notification, err = dec.Notification(); err != nil {
			return nil, err
		}
		in.InSize, in.InSum = dec.Size(), dec.Sum()
	case kind == rrdpxml.KindNotification:
		lim := opt.Limits.WithDefaults()
		b, err := io.ReadAll(io.LimitReader(br, lim.MaxFileSize+1))
		if err != nil {
			return nil, fmt.Errorf("irpki: cannot read: %w", err)
		}
		if in.Notification, err = UnmarshalNotification(b, lim); err != nil {
			return nil, err
		}
		in.InSize, in.InSum = int64(len(b)), sha256.Sum256(b)
	case f == FormatXML:
		err = in.xml(br, opt)
	default:
		err = in.bin(br, opt)
	}
	if err != nil {
		return nil, err
	}
	if n := in.Notification; n != nil {
		in.Session, in.Serial = n.SessionID, n.Serial
	}
	return in, nil
}

func (in *Inspection) xml(r io.Reader, opt Options) error {
	dec := rrdpxml.NewDecoder(r, opt.Limits)
	defer dec.Close()
	h, err := dec.Header()
	if err != nil {
		return err
	}
	in.Session, in.Serial = h.SessionID, h.Serial
	groups := make(map[string]struct{})
	for {
		el, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		repo, name := splitURI(el.URI)
		groups[repo] = struct{}{}
		in.Types[extOf(name)]++
		in.Objects++
	}
	in.Groups = len(groups)
	in.InSize, in.InSum = dec.Size(), dec.Sum()
	return nil
}

func (in *Inspection) bin(r io.Reader, opt Options) error {
	rd := NewReader(r, in.Kind, opt.Limits)
	h, err := rd.Header()
	if err != nil {
		return err
	}
	in.Session, in.Serial = h.SessionID, h.Serial
	for {
		g, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		in.Groups++
		for _, list := range [][]Entry{g.Entries, g.Withdrawn} {
			for i := range list {
				in.Types[extOf(list[i].Name)]++
			}
			in.Objects += len(list)
		}
	}
	in.InSize, in.InSum = rd.Size(), rd.Sum()
	return nil
}
