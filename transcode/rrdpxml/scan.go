package rrdpxml

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"
)

// The XML subset of RRDP: an optional BOM and XML declaration, comments and
// whitespace around the root element, elements with attributes, text only
// inside publish. The scanner works on the decoder's window with offsets
// relative to the start of the current token.

// element names
type elemID uint8

const (
	elNone elemID = iota
	elNotification
	elSnapshot
	elDelta
	elPublish
	elWithdraw
)

var elemNames = [...]string{"", "notification", "snapshot", "delta", "publish", "withdraw"}

func (e elemID) String() string { return elemNames[e] }

// attribute names
type attrID uint8

const (
	attrXmlns attrID = iota
	attrVersion
	attrSessionID
	attrSerial
	attrURI
	attrHash
	nAttrs
)

var attrNames = [nAttrs]string{"xmlns", "version", "session_id", "serial", "uri", "hash"}

// attribute sets, as bit masks of attrID
const (
	attrsRoot    = 1<<attrXmlns | 1<<attrVersion | 1<<attrSessionID | 1<<attrSerial
	attrsObject  = 1<<attrXmlns | 1<<attrURI | 1<<attrHash
	attrsSnapRef = 1<<attrXmlns | 1<<attrURI | 1<<attrHash
	attrsDelRef  = 1<<attrXmlns | 1<<attrSerial | 1<<attrURI | 1<<attrHash
)

// attrVal locates an attribute value, relative to r.
type attrVal struct {
	s, e int
	amp  bool // holds an entity or character reference
}

var bom = "\xef\xbb\xbf"

// prolog reads the input up to and including the root start tag.
func (d *Decoder) prolog() error {
	d.cap, d.what = maxDecl, "XML declaration"
	if ok, err := d.hasPrefix(0, bom); err != nil {
		return err
	} else if ok {
		d.r += len(bom)
	}
	for _, utf16 := range []string{"\xfe\xff", "\xff\xfe"} {
		if ok, err := d.hasPrefix(0, utf16); err != nil {
			return err
		} else if ok {
			return d.syntax(0, "", errorf(ErrEncoding, "UTF-16 byte order mark"))
		}
	}
	if ok, err := d.hasPrefix(0, "<?xml"); err != nil {
		return err
	} else if ok {
		c, err := d.at(5)
		if err != nil {
			return err
		}
		if isSpace(c) {
			if err := d.xmlDecl(); err != nil {
				return err
			}
		}
	}
	for {
		c, err := d.skipSpace()
		if err == io.EOF {
			return d.syntax(0, "", errorf(ErrUnexpectedEOF, "no root element"))
		}
		if err != nil {
			return err
		}
		if c != '<' {
			return d.syntax(0, "", errorf(ErrText, "text before the root element"))
		}
		if err := d.markup(); err != errNotMarkup {
			if err != nil {
				return err
			}
			continue
		}
		return d.rootStart()
	}
}

// xmlDecl reads `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`
// at r; encoding and standalone are optional. The encoding must be UTF-8,
// or US-ASCII, a subset of it.
func (d *Decoder) xmlDecl() error {
	end, err := d.indexFrom(5, '>')
	if err != nil {
		return err
	}
	if d.buf[d.r+end-1] != '?' {
		return d.syntax(0, "", errorf(ErrSyntax, "XML declaration not closed by ?>"))
	}
	decl := string(d.buf[d.r+5 : d.r+end-1])
	names := []string{"version", "encoding", "standalone"} // in this order
	next := 0
	for i := 0; ; i++ {
		decl = strings.TrimLeft(decl, " \t\r\n")
		if decl == "" {
			if i == 0 {
				return d.syntax(0, "", errorf(ErrSyntax, "XML declaration without version"))
			}
			break
		}
		name, rest, ok := strings.Cut(decl, "=")
		name = strings.TrimRight(name, " \t\r\n")
		rest = strings.TrimLeft(rest, " \t\r\n")
		k := next
		for k < len(names) && names[k] != name {
			k++
		}
		if !ok || k == len(names) || (i == 0) != (k == 0) || rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			return d.syntax(0, "", errorf(ErrSyntax, "malformed XML declaration"))
		}
		next = k + 1
		j := strings.IndexByte(rest[1:], rest[0])
		if j < 0 {
			return d.syntax(0, "", errorf(ErrSyntax, "malformed XML declaration"))
		}
		val := rest[1 : 1+j]
		decl = rest[2+j:]
		if decl != "" && !isSpace(decl[0]) {
			return d.syntax(0, "", errorf(ErrSyntax, "malformed XML declaration"))
		}
		switch name {
		case "version":
			if val != "1.0" {
				return d.syntax(0, "", errorf(ErrSyntax, "XML version %q, want 1.0", val))
			}
		case "encoding":
			switch strings.ToUpper(val) {
			case "UTF-8", "US-ASCII", "ASCII":
			default:
				return d.syntax(0, "", errorf(ErrEncoding, "encoding %q", val))
			}
		case "standalone":
			if val != "yes" && val != "no" {
				return d.syntax(0, "", errorf(ErrSyntax, "standalone=%q", val))
			}
		}
	}
	d.r += end + 1
	return nil
}

// errNotMarkup tells that the '<' at r opens an element or end tag.
var errNotMarkup = &SyntaxError{Err: ErrSyntax}

// markup reads a comment at r. It rejects the other "<!" and "<?"
// constructs and returns errNotMarkup if r holds an element or end tag.
func (d *Decoder) markup() error {
	c, err := d.at(1)
	if err != nil {
		return err
	}
	switch c {
	case '?':
		if ok, _ := d.hasPrefix(0, "<?xml"); ok {
			if c, _ := d.at(5); isSpace(c) || c == '?' {
				return d.syntax(0, "", errorf(ErrProcInst, "XML declaration not at the start of the input"))
			}
		}
		return d.syntax(0, "", ErrProcInst)
	case '!':
	default:
		return errNotMarkup
	}
	if ok, err := d.hasPrefix(0, "<!--"); err != nil {
		return err
	} else if ok {
		return d.comment()
	}
	for _, m := range []struct {
		prefix string
		err    error
	}{
		{"<!DOCTYPE", ErrDoctype},
		{"<![CDATA[", ErrCDATA},
		{"<!ENTITY", errorf(ErrEntity, "entity declaration")},
		{"<!ELEMENT", errorf(ErrDoctype, "element declaration")},
		{"<!ATTLIST", errorf(ErrDoctype, "attribute-list declaration")},
		{"<!NOTATION", errorf(ErrDoctype, "notation declaration")},
	} {
		if ok, err := d.hasPrefix(0, m.prefix); err != nil {
			return err
		} else if ok {
			return d.syntax(0, "", m.err)
		}
	}
	return d.syntax(0, "", errorf(ErrSyntax, "unknown markup after <!"))
}

// comment consumes the comment at r. A comment may not contain "--", must
// be valid UTF-8 without control characters, and is at most maxComment
// bytes long.
func (d *Decoder) comment() error {
	saveCap, saveWhat := d.cap, d.what
	d.cap, d.what = maxComment, "comment"
	i := 4
	for {
		j, err := d.indexFrom(i, '-')
		if err != nil {
			return err
		}
		c, err := d.at(j + 1)
		if err != nil {
			return err
		}
		if c != '-' {
			i = j + 1
			continue
		}
		if c, err = d.at(j + 2); err != nil {
			return err
		}
		if c != '>' {
			return d.syntax(j, "", errorf(ErrSyntax, `"--" inside a comment`))
		}
		body := d.buf[d.r+4 : d.r+j]
		if !utf8.Valid(body) {
			return d.syntax(4, "", errorf(ErrEncoding, "comment is not valid UTF-8"))
		}
		for k, c := range body {
			if c < 0x20 && !isSpace(c) || c == 0x7f {
				return d.syntax(4+k, "", errorf(ErrSyntax, "control character 0x%02x in a comment", c))
			}
		}
		d.r += j + 3
		d.cap, d.what = saveCap, saveWhat
		return nil
	}
}

// name scans an XML name starting at offset off and returns its end.
func (d *Decoder) name(off int) (int, error) {
	i := off
	for {
		c, err := d.at(i)
		if err != nil {
			return 0, err
		}
		if !isNameByte(c) {
			break
		}
		i++
	}
	if i == off {
		c, _ := d.at(i)
		return 0, d.syntax(off, "", errorf(ErrSyntax, "expected a name, found %q", rune(c)))
	}
	return i, nil
}

// isNameByte accepts the ASCII name characters of XML; the names of RRDP
// are all ASCII, and a non-ASCII name is rejected as malformed.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':'
}

// startName reads the name of the start tag at r and returns the element
// and the offset after its name.
func (d *Decoder) startName() (elemID, int, error) {
	end, err := d.name(1)
	if err != nil {
		return elNone, 0, err
	}
	n := d.buf[d.r+1 : d.r+end]
	switch string(n) {
	case "publish":
		return elPublish, end, nil
	case "withdraw":
		return elWithdraw, end, nil
	case "snapshot":
		return elSnapshot, end, nil
	case "delta":
		return elDelta, end, nil
	case "notification":
		return elNotification, end, nil
	}
	if bytes.IndexByte(n, ':') >= 0 {
		return elNone, 0, d.syntax(1, "", errorf(ErrNamespace, "prefixed element <%s>", n))
	}
	return elNone, 0, d.syntax(1, "", errorf(ErrUnknownElement, "<%s>", n))
}

// attributes reads the attributes of the start tag at r, from offset off
// after the element's name, into d.vals and d.seen. It returns the offset
// after the tag and whether the tag closes itself ("/>").
func (d *Decoder) attributes(off int, el elemID, allowed uint8) (int, bool, error) {
	d.seen = 0
	for {
		c, err := d.at(off)
		if err != nil {
			return 0, false, err
		}
		switch {
		case c == '>':
			return off + 1, false, nil
		case c == '/':
			if c, err = d.at(off + 1); err != nil {
				return 0, false, err
			}
			if c != '>' {
				return 0, false, d.syntax(off, "", errorf(ErrSyntax, "'/' not followed by '>' in <%s>", el))
			}
			return off + 2, true, nil
		case !isSpace(c):
			return 0, false, d.syntax(off, "", errorf(ErrSyntax, "expected whitespace, '>' or '/>' in <%s>, found %q", el, rune(c)))
		}
		for isSpace(c) {
			off++
			if c, err = d.at(off); err != nil {
				return 0, false, err
			}
		}
		if c == '>' || c == '/' {
			continue
		}
		ns := off
		if off, err = d.name(off); err != nil {
			return 0, false, err
		}
		id, err := d.attrName(ns, off, el, allowed)
		if err != nil {
			return 0, false, err
		}
		if c, err = d.skipTagSpace(&off); err != nil {
			return 0, false, err
		}
		if c != '=' {
			return 0, false, d.syntax(off, "", errorf(ErrSyntax, "expected '=' after attribute %s", attrNames[id]))
		}
		off++
		q, err := d.skipTagSpace(&off)
		if err != nil {
			return 0, false, err
		}
		if q != '"' && q != '\'' {
			return 0, false, d.syntax(off, "", errorf(ErrSyntax, "attribute %s not quoted", attrNames[id]))
		}
		vs := off + 1
		ve, err := d.indexFrom(vs, q)
		if err != nil {
			return 0, false, err
		}
		v := d.buf[d.r+vs : d.r+ve]
		if i := bytes.IndexByte(v, '<'); i >= 0 {
			return 0, false, d.syntax(vs+i, "", errorf(ErrSyntax, "'<' in attribute %s", attrNames[id]))
		}
		d.vals[id] = attrVal{s: vs, e: ve, amp: bytes.IndexByte(v, '&') >= 0}
		d.seen |= 1 << id
		off = ve + 1
	}
}

func (d *Decoder) skipTagSpace(off *int) (byte, error) {
	for {
		c, err := d.at(*off)
		if err != nil || !isSpace(c) {
			return c, err
		}
		*off++
	}
}

// attrName classifies the attribute name at [s, e).
func (d *Decoder) attrName(s, e int, el elemID, allowed uint8) (attrID, error) {
	n := d.buf[d.r+s : d.r+e]
	id := nAttrs
	switch string(n) {
	case "xmlns":
		id = attrXmlns
	case "version":
		id = attrVersion
	case "session_id":
		id = attrSessionID
	case "serial":
		id = attrSerial
	case "uri":
		id = attrURI
	case "hash":
		id = attrHash
	}
	switch {
	case id == nAttrs && bytes.HasPrefix(n, []byte("xmlns:")):
		return 0, d.syntax(s, "", errorf(ErrNamespace, "namespace prefix declaration %s in <%s>", n, el))
	case id == nAttrs && bytes.IndexByte(n, ':') >= 0:
		return 0, d.syntax(s, "", errorf(ErrNamespace, "prefixed attribute %s in <%s>", n, el))
	case id == nAttrs || allowed&(1<<id) == 0:
		return 0, d.syntax(s, "", errorf(ErrUnknownAttr, "%s in <%s>", n, el))
	case d.seen&(1<<id) != 0:
		return 0, d.syntax(s, "", errorf(ErrDuplicateAttr, "%s in <%s>", n, el))
	}
	return id, nil
}

// has tells whether the last start tag had attribute id.
func (d *Decoder) has(id attrID) bool { return d.seen&(1<<id) != 0 }

// value returns the value of attribute id of the last start tag, with its
// references replaced. The result is valid until the next call.
func (d *Decoder) value(id attrID) ([]byte, error) {
	v := d.vals[id]
	raw := d.buf[d.r+v.s : d.r+v.e]
	if !v.amp {
		return raw, nil
	}
	out, at, err := unescape(d.scratch[:0], raw)
	if err != nil {
		return nil, d.syntax(v.s+at, "", err)
	}
	d.scratch = out
	return out, nil
}

// checkXmlns checks an optional xmlns attribute of a child element: if
// present, it must name the RRDP namespace.
func (d *Decoder) checkXmlns(el elemID) error {
	if !d.has(attrXmlns) {
		return nil
	}
	ns, err := d.value(attrXmlns)
	if err != nil {
		return err
	}
	if string(ns) != Namespace {
		return d.syntax(d.vals[attrXmlns].s, "", errorf(ErrNamespace, "<%s> in namespace %q", el, ns))
	}
	return nil
}

// endTag reads the end tag of el at offset off, where the scanner found a
// '<', and returns the offset after it.
func (d *Decoder) endTag(off int, el elemID) (int, error) {
	c, err := d.at(off + 1)
	if err != nil {
		return 0, err
	}
	if c != '/' {
		switch c {
		case '!':
			if ok, _ := d.hasPrefix(off, "<![CDATA["); ok {
				return 0, d.syntax(off, "", ErrCDATA)
			}
			return 0, d.syntax(off, "", errorf(ErrSyntax, "markup inside <%s>", el))
		case '?':
			return 0, d.syntax(off, "", ErrProcInst)
		}
		return 0, d.syntax(off, "", errorf(ErrUnexpectedElement, "element inside <%s>", el))
	}
	end, err := d.name(off + 2)
	if err != nil {
		return 0, err
	}
	if n := d.buf[d.r+off+2 : d.r+end]; string(n) != el.String() {
		return 0, d.syntax(off, "", errorf(ErrMismatchedTag, "</%s> closes <%s>", n, el))
	}
	c, err = d.skipTagSpace(&end)
	if err != nil {
		return 0, err
	}
	if c != '>' {
		return 0, d.syntax(end, "", errorf(ErrSyntax, "expected '>' in </%s>", el))
	}
	return end + 1, nil
}

// emptyBody reads, from offset off after a start tag, whitespace and the
// end tag of el, and returns the offset after it.
func (d *Decoder) emptyBody(off int, el elemID) (int, error) {
	c, err := d.skipTagSpace(&off)
	if err != nil {
		return 0, err
	}
	if c != '<' {
		return 0, d.syntax(off, "", errorf(ErrText, "text inside <%s>", el))
	}
	return d.endTag(off, el)
}

// trailer reads what follows the root end tag: only whitespace and
// comments, up to the end of input.
func (d *Decoder) trailer() error {
	d.cap, d.what = d.maxTag, "input after the root element"
	for {
		c, err := d.skipSpace()
		if err == io.EOF {
			d.state = stateDone
			d.sum = d.feed.sum
			return nil
		}
		if err != nil {
			return err
		}
		if c == '<' {
			if err := d.markup(); err != errNotMarkup {
				if err != nil {
					return err
				}
				continue
			}
		}
		return d.syntax(0, "", ErrTrailingData)
	}
}
