package rrdpxml

import (
	"io"
)

// DecodeNotification reads a notification file from r and returns it with
// the SHA-256 of its bytes.
func DecodeNotification(r io.Reader, lim Limits) (*Notification, [32]byte, error) {
	d := NewDecoder(r, lim)
	defer d.Close()
	n, err := d.Notification()
	if err != nil {
		return nil, [32]byte{}, err
	}
	return n, d.Sum(), nil
}

// Notification reads the rest of a notification file, after its header
// (which it reads if Header was not called), and returns it. On success
// the whole input has been read and Sum is valid.
//
// Beyond the syntax, it checks that the snapshot comes first and only
// once, that every URI is an https URI, that no two deltas have the same
// serial and that no delta's serial exceeds the notification's. Deltas
// may come in any order and the serials need not be contiguous (RFC 8182
// leaves both to the relying party); Deltas keeps the document order.
func (d *Decoder) Notification() (*Notification, error) {
	h, err := d.Header()
	if err != nil {
		return nil, err
	}
	if h.Kind != KindNotification {
		return nil, &SyntaxError{Line: 1, Err: errorf(ErrKind, "root element <%s>, want <notification>", d.root)}
	}
	switch d.state {
	case stateFailed:
		return nil, d.err
	case stateDone:
		return nil, &SyntaxError{Line: 1, Err: errorf(ErrKind, "Notification called twice")}
	}
	n, err := d.notification()
	if err != nil {
		return nil, d.fail(err)
	}
	return n, nil
}

func (d *Decoder) notification() (*Notification, error) {
	n := &Notification{SessionID: d.hdr.SessionID, Serial: d.hdr.Serial}
	haveSnapshot := false
	serials := make(map[uint64]struct{})
	for d.state == stateBody {
		d.cap, d.what, d.uri = d.maxTag, "start tag", ""
		c, err := d.skipSpace()
		if err == io.EOF {
			return nil, d.syntax(0, "", errorf(ErrUnexpectedEOF, "<notification> not closed"))
		}
		if err != nil {
			return nil, err
		}
		if c != '<' {
			return nil, d.syntax(0, "", errorf(ErrText, "text inside <notification>"))
		}
		if err := d.markup(); err != errNotMarkup {
			if err != nil {
				return nil, err
			}
			continue
		}
		if d.buf[d.r+1] == '/' {
			end, err := d.endTag(0, elNotification)
			if err != nil {
				return nil, err
			}
			if !haveSnapshot {
				return nil, d.syntax(0, "", ErrNoSnapshot)
			}
			d.r += end
			d.state = stateEnd
			break
		}
		el, end, err := d.startName()
		if err != nil {
			return nil, err
		}
		allowed := uint8(attrsSnapRef)
		switch {
		case el == elSnapshot && haveSnapshot:
			return nil, d.syntax(1, "", errorf(ErrUnexpectedElement, "second <snapshot>"))
		case el == elDelta && !haveSnapshot:
			return nil, d.syntax(1, "", errorf(ErrUnexpectedElement, "<delta> before <snapshot>"))
		case el == elDelta:
			if len(n.Deltas) >= d.lim.MaxDeltas {
				return nil, d.syntax(0, "", errorf(ErrTooLarge, "more than %d deltas", d.lim.MaxDeltas))
			}
			allowed = attrsDelRef
		case el != elSnapshot:
			return nil, d.syntax(1, "", errorf(ErrUnexpectedElement, "<%s> inside <notification>", el))
		}
		d.lineOf(d.r)
		end, empty, err := d.attributes(end, el, allowed)
		if err != nil {
			return nil, err
		}
		if err := d.checkXmlns(el); err != nil {
			return nil, err
		}
		uri, hash, err := d.reference(el, allowed)
		if err != nil {
			return nil, err
		}
		if el == elSnapshot {
			n.Snapshot = SnapshotRef{URI: uri, Hash: hash}
			haveSnapshot = true
		} else {
			v, err := d.value(attrSerial)
			if err != nil {
				return nil, err
			}
			serial, err := parseSerial(v)
			if err != nil {
				return nil, d.syntax(d.vals[attrSerial].s, "", err)
			}
			if serial > n.Serial {
				return nil, d.syntax(d.vals[attrSerial].s, "", errorf(ErrDeltaSerial, "delta %d, notification %d", serial, n.Serial))
			}
			if _, dup := serials[serial]; dup {
				return nil, d.syntax(d.vals[attrSerial].s, "", errorf(ErrDuplicateSerial, "%d", serial))
			}
			serials[serial] = struct{}{}
			n.Deltas = append(n.Deltas, DeltaRef{Serial: serial, URI: uri, Hash: hash})
		}
		if !empty {
			if end, err = d.emptyBody(end, el); err != nil {
				return nil, err
			}
		}
		d.r += end
	}
	if !haveSnapshot {
		return nil, d.syntax(0, "", ErrNoSnapshot)
	}
	if err := d.trailer(); err != nil {
		return nil, err
	}
	return n, nil
}

// reference checks the attributes of a notification's snapshot or delta
// element and returns its uri and hash.
func (d *Decoder) reference(el elemID, allowed uint8) (string, [32]byte, error) {
	for _, id := range []attrID{attrSerial, attrURI, attrHash} {
		if allowed&(1<<id) != 0 && !d.has(id) {
			return "", [32]byte{}, d.syntax(1, "", errorf(ErrMissingAttr, "%s in <%s>", attrNames[id], el))
		}
	}
	v, err := d.value(attrURI)
	if err != nil {
		return "", [32]byte{}, err
	}
	if err := checkFileURI(v, d.lim); err != nil {
		return "", [32]byte{}, d.syntax(d.vals[attrURI].s, string(v), err)
	}
	uri := string(v)
	d.uri = uri
	if v, err = d.value(attrHash); err != nil {
		return "", [32]byte{}, err
	}
	hash, err := parseHash(v)
	if err != nil {
		return "", [32]byte{}, d.syntax(d.vals[attrHash].s, "", err)
	}
	return uri, hash, nil
}
