package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// decodeResult is what a relying-party decoder got out of a snapshot:
// the objects, their decoded bytes and the SHA-256 of the input, which an
// RP checks against the notification.
type decodeResult struct {
	Objects int
	Bytes   int64
	Sum     [32]byte
}

// rpDecoder is one way a relying party reads a snapshot held in memory.
type rpDecoder struct {
	name  string
	bin   bool // reads the .bin, else the XML
	parse func([]byte) (decodeResult, error)
}

var rpDecoders = []rpDecoder{
	{"snapshot.bin, irpki.Reader (pins checked)", true, decodeBin},
	{"snapshot.xml, rrdpxml (this project)", false, decodeXMLFast},
	{"snapshot.xml, encoding/xml baseline", false, decodeXMLBaseline},
}

// decodeBin reads a snapshot.bin with the checking reader: every group's
// pin, every name and URI, every object delivered.
func decodeBin(b []byte) (decodeResult, error) {
	rd := irpki.NewReader(bytes.NewReader(b), rrdpxml.KindSnapshot, rrdpxml.Limits{})
	var res decodeResult
	for {
		g, err := rd.Next()
		if err == io.EOF {
			res.Sum = rd.Sum()
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("read snapshot.bin: %w", err)
		}
		for _, e := range g.Entries {
			res.Objects++
			res.Bytes += int64(len(e.Content))
		}
	}
}

// decodeXMLFast reads a snapshot.xml with the project's streaming decoder,
// which base64-decodes every object and checks every URI.
func decodeXMLFast(b []byte) (decodeResult, error) {
	d := rrdpxml.NewDecoder(bytes.NewReader(b), rrdpxml.Limits{})
	defer d.Close()
	var res decodeResult
	for {
		el, err := d.Next()
		if err == io.EOF {
			res.Sum = d.Sum()
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("read snapshot.xml: %w", err)
		}
		res.Objects++
		res.Bytes += int64(len(el.Content))
	}
}

var errBaseline = errors.New("not a snapshot")

// decodeXMLBaseline reads a snapshot.xml as a relying party would write it
// with the standard library: encoding/xml's token loop, the publish text
// stripped of whitespace and base64-decoded, the input hashed on the way.
func decodeXMLBaseline(b []byte) (decodeResult, error) {
	h := sha256.New()
	dec := xml.NewDecoder(io.TeeReader(bytes.NewReader(b), h))
	var res decodeResult
	var text, obj []byte
	inPublish, root := false, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read snapshot.xml with encoding/xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "snapshot":
				root = true
			case "publish":
				inPublish, text = true, text[:0]
				uri := ""
				for _, a := range t.Attr {
					if a.Name.Local == "uri" {
						uri = a.Value
					}
				}
				if uri == "" {
					return res, fmt.Errorf("read snapshot.xml with encoding/xml: publish without uri")
				}
			default:
				return res, fmt.Errorf("read snapshot.xml with encoding/xml: element %q: %w", t.Name.Local, errBaseline)
			}
		case xml.CharData:
			if inPublish {
				for _, c := range t {
					if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
						text = append(text, c)
					}
				}
			}
		case xml.EndElement:
			if t.Name.Local != "publish" {
				continue
			}
			inPublish = false
			obj = obj[:0]
			obj, err = base64.StdEncoding.AppendDecode(obj, text)
			if err != nil {
				return res, fmt.Errorf("read snapshot.xml with encoding/xml: base64: %w", err)
			}
			res.Objects++
			res.Bytes += int64(len(obj))
		}
	}
	if !root {
		return res, fmt.Errorf("read snapshot.xml with encoding/xml: %w", errBaseline)
	}
	h.Sum(res.Sum[:0])
	return res, nil
}
