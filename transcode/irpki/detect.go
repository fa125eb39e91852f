package irpki

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Format tells RFC 8182 XML from the iRPKI protobuf layout.
type Format uint8

// The two formats.
const (
	FormatXML Format = iota + 1
	FormatBin
)

func (f Format) String() string {
	switch f {
	case FormatXML:
		return "xml"
	case FormatBin:
		return "bin"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// DetectSize is how much of a file Detect needs at most.
const DetectSize = 64 << 10

// ErrUnknownFormat is returned by Detect for a file that is neither.
var ErrUnknownFormat = errors.New("irpki: neither RRDP XML nor iRPKI .bin")

// Detect tells the format and kind of an RRDP file from its first bytes
// (up to DetectSize, or the whole file if shorter). It only sniffs: the
// decoders check everything.
func Detect(prefix []byte) (Format, rrdpxml.Kind, error) {
	p := bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf"))
	p = bytes.TrimLeft(p, " \t\r\n")
	if len(p) > 0 && p[0] == '<' {
		// The decoder's own header parse gives the kind, or the precise
		// reason to reject (DOCTYPE, namespace, ...). Only a prefix cut
		// inside a long prologue falls back to a plain look for the root.
		dec := rrdpxml.NewDecoder(bytes.NewReader(prefix), rrdpxml.Limits{})
		h, err := dec.Header()
		dec.Close()
		if err == nil {
			return FormatXML, h.Kind, nil
		}
		if !errors.Is(err, rrdpxml.ErrUnexpectedEOF) {
			return FormatXML, 0, err
		}
		k, err := detectXML(p)
		return FormatXML, k, err
	}
	if len(prefix) > 0 && prefix[0] == byte(fSerial<<3|protowire.VarintType) {
		k, err := detectBin(prefix)
		return FormatBin, k, err
	}
	return 0, 0, ErrUnknownFormat
}

// detectXML finds the root element's name past the XML declaration and
// comments.
func detectXML(p []byte) (rrdpxml.Kind, error) {
	for len(p) > 0 {
		p = bytes.TrimLeft(p, " \t\r\n")
		switch {
		case bytes.HasPrefix(p, []byte("<?")):
			i := bytes.Index(p, []byte("?>"))
			if i < 0 {
				return 0, ErrUnknownFormat
			}
			p = p[i+2:]
		case bytes.HasPrefix(p, []byte("<!--")):
			i := bytes.Index(p, []byte("-->"))
			if i < 0 {
				return 0, ErrUnknownFormat
			}
			p = p[i+3:]
		case bytes.HasPrefix(p, []byte("<notification")):
			return rrdpxml.KindNotification, nil
		case bytes.HasPrefix(p, []byte("<snapshot")):
			return rrdpxml.KindSnapshot, nil
		case bytes.HasPrefix(p, []byte("<delta")):
			return rrdpxml.KindDelta, nil
		default:
			return 0, fmt.Errorf("%w: unknown root element", ErrUnknownFormat)
		}
	}
	return 0, ErrUnknownFormat
}

// detectBin walks the top-level fields: references mean a notification;
// the kind field says it outright; otherwise the first group's entries
// tell a snapshot from a delta.
func detectBin(p []byte) (rrdpxml.Kind, error) {
	for len(p) > 0 {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 {
			break
		}
		switch {
		case num == fSnapRef || num == fDeltaRef:
			return rrdpxml.KindNotification, nil
		case num == fKind && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(p[n:])
			switch v {
			case kindNotification:
				return rrdpxml.KindNotification, nil
			case kindSnapshot:
				return rrdpxml.KindSnapshot, nil
			case kindDelta:
				return rrdpxml.KindDelta, nil
			}
		case num == fCAs && typ == protowire.BytesType:
			if k := detectGroup(p[n:]); k != 0 {
				return k, nil
			}
		}
		m := protowire.ConsumeFieldValue(num, typ, p[n:])
		if m < 0 {
			break
		}
		p = p[n+m:]
	}
	return 0, fmt.Errorf("%w: cannot tell a snapshot.bin from a delta.bin in the first %d bytes", ErrUnknownFormat, DetectSize)
}

// detectGroup looks into a (possibly cut) group: a withdrawn list or an
// entry with field 3 is a delta; an entry with field 2 and nothing after
// it is a snapshot.
func detectGroup(p []byte) rrdpxml.Kind {
	_, n := protowire.ConsumeVarint(p) // the group's length
	if n < 0 {
		return 0
	}
	p = p[n:]
	for len(p) > 0 {
		num, typ, n := protowire.ConsumeTag(p)
		if n < 0 || typ != protowire.BytesType {
			return 0
		}
		if num == fWithdrawn {
			return rrdpxml.KindDelta
		}
		v, m := protowire.ConsumeBytes(p[n:])
		if num == fEntries && m < 0 {
			// A cut entry: its fields so far may still tell.
			_, l := protowire.ConsumeVarint(p[n:])
			if l < 0 {
				return 0
			}
			v = p[n+l:]
		}
		if num == fEntries {
			var last protowire.Number
			for len(v) > 0 {
				en, _, k := protowire.ConsumeField(v)
				if k < 0 {
					// A cut field: its number, and for field 2 its length,
					// may still tell (a DeltaEntry's field 2 is a 32-byte
					// hash).
					f, _, t := protowire.ConsumeTag(v)
					switch {
					case t > 0 && f == fDeltaContent:
						return rrdpxml.KindDelta
					case t > 0 && f == fContent:
						if l, n := protowire.ConsumeVarint(v[t:]); n > 0 && l != 32 {
							return rrdpxml.KindSnapshot
						}
					}
					return 0
				}
				last = en
				v = v[k:]
			}
			if last == fDeltaContent {
				return rrdpxml.KindDelta
			}
			if last == fContent && m >= 0 {
				return rrdpxml.KindSnapshot
			}
			return 0
		}
		if m < 0 {
			return 0
		}
		p = p[n+m:]
	}
	return 0
}
