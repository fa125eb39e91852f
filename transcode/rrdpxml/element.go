package rrdpxml

import (
	"bytes"
	"encoding/base64"
	"io"
	"unicode/utf8"
)

// rootStart reads the root start tag at r.
func (d *Decoder) rootStart() error {
	d.cap, d.what = d.maxTag, "root start tag"
	el, end, err := d.startName()
	if err != nil {
		return err
	}
	var kind Kind
	switch el {
	case elNotification:
		kind = KindNotification
	case elSnapshot:
		kind = KindSnapshot
	case elDelta:
		kind = KindDelta
	default:
		return d.syntax(1, "", errorf(ErrUnexpectedElement, "<%s> as the root element", el))
	}
	d.lineOf(d.r)
	end, empty, err := d.attributes(end, el, attrsRoot)
	if err != nil {
		return err
	}
	if !d.has(attrXmlns) {
		return d.syntax(1, "", errorf(ErrNamespace, "<%s> without xmlns", el))
	}
	ns, err := d.value(attrXmlns)
	if err != nil {
		return err
	}
	if string(ns) != Namespace {
		return d.syntax(d.vals[attrXmlns].s, "", errorf(ErrNamespace, "xmlns=%q, want %q", ns, Namespace))
	}
	for _, id := range []attrID{attrVersion, attrSessionID, attrSerial} {
		if !d.has(id) {
			return d.syntax(1, "", errorf(ErrMissingAttr, "%s in <%s>", attrNames[id], el))
		}
	}
	v, err := d.value(attrVersion)
	if err != nil {
		return err
	}
	if string(v) != "1" {
		return d.syntax(d.vals[attrVersion].s, "", errorf(ErrVersion, "version=%q, want \"1\"", v))
	}
	if v, err = d.value(attrSessionID); err != nil {
		return err
	}
	sid, err := parseSessionID(v)
	if err != nil {
		return d.syntax(d.vals[attrSessionID].s, "", err)
	}
	if v, err = d.value(attrSerial); err != nil {
		return err
	}
	serial, err := parseSerial(v)
	if err != nil {
		return d.syntax(d.vals[attrSerial].s, "", err)
	}
	d.hdr = Header{Kind: kind, SessionID: sid, Serial: serial}
	d.root = el
	d.r += end
	d.state = stateBody
	if empty {
		d.state = stateEnd
	}
	return nil
}

// Next returns the next publish or withdraw element of a snapshot or
// delta, reading the header first if Header was not called. After the
// last element it reads the rest of the input and returns io.EOF once the
// whole input is accepted; Sum is valid then.
//
// The returned Element, including its Content, belongs to the decoder and
// is valid only until the next call to Next: copy what you keep. URI is a
// fresh string each time and may be kept.
func (d *Decoder) Next() (*Element, error) {
	if d.state != stateBody {
		switch d.state {
		case stateStart:
			if _, err := d.Header(); err != nil {
				return nil, err
			}
		case stateDone:
			return nil, io.EOF
		case stateFailed:
			return nil, d.err
		}
		if d.hdr.Kind == KindNotification {
			return nil, &SyntaxError{Line: 1, Err: errorf(ErrKind, "Next on a notification, use Notification")}
		}
	}
	d.pending.set = false
	e, err := d.next()
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, d.fail(err)
	}
	return e, nil
}

func (d *Decoder) next() (*Element, error) {
	for {
		if d.state == stateEnd {
			// RFC 8182's schema: a delta holds at least one publish or
			// withdraw element.
			if d.hdr.Kind == KindDelta && d.count == 0 {
				return nil, d.syntax(0, "", ErrEmptyDelta)
			}
			if err := d.trailer(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		d.cap, d.what, d.uri = d.maxTag, "start tag", ""
		c, err := d.skipSpace()
		if err == io.EOF {
			return nil, d.syntax(0, "", errorf(ErrUnexpectedEOF, "<%s> not closed", d.root))
		}
		if err != nil {
			return nil, err
		}
		if c != '<' {
			return nil, d.syntax(0, "", errorf(ErrText, "text inside <%s>", d.root))
		}
		if err := d.markup(); err != errNotMarkup {
			if err != nil {
				return nil, err
			}
			continue
		}
		if d.buf[d.r+1] == '/' {
			end, err := d.endTag(0, d.root)
			if err != nil {
				return nil, err
			}
			d.r += end
			d.state = stateEnd
			continue
		}
		return d.object()
	}
}

// object reads the publish or withdraw element at r.
func (d *Decoder) object() (*Element, error) {
	el, end, err := d.startName()
	if err != nil {
		return nil, err
	}
	switch {
	case el == elWithdraw && d.hdr.Kind == KindSnapshot:
		return nil, d.syntax(1, "", errorf(ErrUnexpectedElement, "<withdraw> in a snapshot"))
	case el != elPublish && el != elWithdraw:
		return nil, d.syntax(1, "", errorf(ErrUnexpectedElement, "<%s> inside <%s>", el, d.root))
	case d.count >= d.lim.MaxObjects:
		return nil, d.syntax(0, "", errorf(ErrTooLarge, "more than %d publish and withdraw elements", d.lim.MaxObjects))
	}
	d.count++
	e := &d.elem
	e.Line = d.lineOf(d.r)
	e.Offset = d.base + int64(d.r)
	end, empty, err := d.attributes(end, el, attrsObject)
	if err != nil {
		return nil, err
	}
	if err := d.checkXmlns(el); err != nil {
		return nil, err
	}
	if !d.has(attrURI) {
		return nil, d.syntax(1, "", errorf(ErrMissingAttr, "uri in <%s>", el))
	}
	uri, err := d.value(attrURI)
	if err != nil {
		return nil, err
	}
	if err := checkURI(uri, false, d.lim.MaxURILen); err != nil {
		return nil, d.syntax(d.vals[attrURI].s, string(uri), err)
	}
	e.URI = string(uri)
	d.uri = e.URI
	if !d.uris.addString(e.URI) {
		return nil, d.syntax(d.vals[attrURI].s, "", ErrDuplicateURI)
	}
	e.HasHash = d.has(attrHash)
	e.Hash = [32]byte{}
	if e.HasHash {
		v, err := d.value(attrHash)
		if err != nil {
			return nil, err
		}
		if e.Hash, err = parseHash(v); err != nil {
			return nil, d.syntax(d.vals[attrHash].s, "", err)
		}
	}
	if el == elWithdraw {
		e.Withdraw, e.Content = true, nil
		if !e.HasHash {
			return nil, d.syntax(0, "", ErrMissingHash)
		}
		if !empty {
			if end, err = d.emptyBody(end, el); err != nil {
				return nil, err
			}
		}
		d.r += end
		e.End = d.base + int64(d.r)
		return e, nil
	}
	e.Withdraw = false
	if e.HasHash && d.hdr.Kind == KindSnapshot {
		return nil, d.syntax(d.vals[attrHash].s, "", errorf(ErrUnexpectedHash, "publish with hash"))
	}
	if empty {
		if err := d.emptyContent(end, 0); err != nil {
			return nil, err
		}
		e.End = d.base + int64(d.r)
		return e, nil
	}
	d.cap, d.what = d.maxContent, "publish element"
	lt, err := d.indexFrom(end, '<')
	if err != nil {
		return nil, err
	}
	tagEnd, err := d.endTag(lt, elPublish)
	if err != nil {
		return nil, err
	}
	if d.deferContent {
		e.Content = nil
		d.pending = pendingContent{s: end, e: lt, back: tagEnd, set: true}
	} else if err := d.decodeContent(end, lt); err != nil {
		return nil, err
	}
	d.r += tagEnd
	e.End = d.base + int64(d.r)
	return e, nil
}

// decodeContent decodes the base64 text at [s, e) into d.elem.Content.
// Whitespace around the text and CR and LF inside it cost nothing (the
// standard decoder skips CR and LF); spaces, tabs or references inside
// take a second pass that compacts the text first.
func (d *Decoder) decodeContent(s, e int) error {
	raw := d.buf[d.r+s : d.r+e]
	for len(raw) > 0 && isSpace(raw[0]) {
		raw = raw[1:]
		s++
	}
	for len(raw) > 0 && isSpace(raw[len(raw)-1]) {
		raw = raw[:len(raw)-1]
	}
	if len(raw) == 0 {
		return d.emptyContent(0, s)
	}
	n := base64.StdEncoding.DecodedLen(len(raw))
	if cap(d.content) < n {
		d.content = make([]byte, n+n/4)
	}
	dst := d.content[:n]
	m, ok := decodeLines(dst, raw)
	var err error
	if !ok {
		m, err = base64.StdEncoding.Decode(dst, raw)
	}
	if err != nil {
		ci, ok := err.(base64.CorruptInputError)
		if !ok || int(ci) >= len(raw) || raw[ci] != ' ' && raw[ci] != '\t' && raw[ci] != '&' {
			return d.badBase64(raw, s, int(ci))
		}
		compact, err := d.compactBase64(raw, s)
		if err != nil {
			return err
		}
		if m, err = base64.StdEncoding.Decode(dst, compact); err != nil {
			return d.badBase64(raw, s, -1)
		}
	}
	if m == 0 {
		return d.emptyContent(0, s)
	}
	if m > d.lim.MaxObjectSize {
		return d.syntax(s, "", errorf(ErrTooLarge, "object of %d bytes, over the limit of %d", m, d.lim.MaxObjectSize))
	}
	d.elem.Content = dst[:m]
	return nil
}

// decodeLines is the fast path for base64 wrapped in lines (and for text
// on one line): it decodes line by line, which is faster than letting the
// standard decoder step over each line end. It gives up, returning false,
// unless every line but the last is whole quanta without padding; the
// caller then decodes raw in one piece, which accepts the same text and
// reports errors.
func decodeLines(dst, raw []byte) (int, bool) {
	n := 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		m, err := base64.StdEncoding.Decode(dst[n:], line)
		// A line before the last must be whole quanta: no padding and
		// nothing skipped, which the count of bytes decoded tells.
		if err != nil || len(raw) > 0 && (len(line)%4 != 0 || m != len(line)/4*3) {
			return 0, false
		}
		n += m
	}
	return n, true
}

// emptyContent accepts a publish without content, unless the limits
// reject it; then it reports it at offset at. On success the element is
// consumed up to offset end (0 if the caller consumes it).
func (d *Decoder) emptyContent(end, at int) error {
	if d.lim.RejectEmptyContent {
		return d.syntax(at, "", ErrEmptyContent)
	}
	d.elem.Content = d.content[:0]
	d.r += end
	return nil
}

// compactBase64 copies raw into d.scratch without whitespace and with its
// references replaced.
func (d *Decoder) compactBase64(raw []byte, s int) ([]byte, error) {
	if cap(d.scratch) < len(raw) {
		d.scratch = make([]byte, 0, len(raw))
	}
	out := d.scratch[:0]
	for i := 0; i < len(raw); {
		switch c := raw[i]; {
		case isSpace(c):
			i++
		case c == '&':
			r, n, err := reference(raw[i:])
			if err != nil {
				return nil, d.syntax(s+i, "", err)
			}
			out = utf8.AppendRune(out, r)
			i += n
		default:
			out = append(out, c)
			i++
		}
	}
	d.scratch = out
	return out, nil
}

// badBase64 reports malformed base64 in raw, which starts at offset s:
// at the first character outside the alphabet if there is one, else at
// index at of raw (if at ≥ 0) or at its start.
func (d *Decoder) badBase64(raw []byte, s, at int) error {
	for i, c := range raw {
		if !isBase64Byte(c) && !isSpace(c) && c != '&' {
			return d.syntax(s+i, "", errorf(ErrBadBase64, "character %q", rune(c)))
		}
	}
	if at < 0 || at > len(raw) {
		at = 0
	}
	return d.syntax(s+at, "", errorf(ErrBadBase64, "malformed at character %d of the text", at))
}

func isBase64Byte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
