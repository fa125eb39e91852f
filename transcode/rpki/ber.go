package rpki

import (
	"errors"
	"fmt"
)

// maxBERDepth bounds the nesting of a BER encoding: RPKI signed objects
// nest about a dozen levels deep.
const maxBERDepth = 32

// berToDER returns in with the BER freedoms that real signed objects use
// removed: indefinite lengths become definite, long-form lengths minimal,
// and constructed OCTET STRINGs are flattened into primitive ones. It
// returns in itself, without copying, when there is nothing to change.
// Other BER freedoms (unsorted SETs, non-canonical BOOLEANs) are left for
// the DER parser to reject.
func berToDER(in []byte) ([]byte, error) {
	n, ok, err := scanDER(in, 0)
	if err == nil && ok && n == len(in) {
		return in, nil
	}
	out, rest, err := convertBER(nil, in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("ber: %d trailing bytes", len(rest))
	}
	return out, nil
}

// berHeader reads an identifier and a length. length is -1 for the
// indefinite form; minimal reports whether the length is DER.
func berHeader(in []byte) (tag []byte, constructed bool, length, hdr int, minimal bool, err error) {
	if len(in) < 2 {
		return nil, false, 0, 0, false, errors.New("ber: truncated header")
	}
	i := 1
	if in[0]&0x1f == 0x1f { // high tag number form
		for {
			if i >= len(in) || i > 5 {
				return nil, false, 0, 0, false, errors.New("ber: bad tag")
			}
			i++
			if in[i-1]&0x80 == 0 {
				break
			}
		}
	}
	tag = in[:i]
	constructed = in[0]&0x20 != 0
	if i >= len(in) {
		return nil, false, 0, 0, false, errors.New("ber: truncated length")
	}
	l := in[i]
	i++
	switch {
	case l < 0x80:
		if int(l) > len(in)-i {
			return nil, false, 0, 0, false, errors.New("ber: length exceeds input")
		}
		return tag, constructed, int(l), i, true, nil
	case l == 0x80:
		if !constructed {
			return nil, false, 0, 0, false, errors.New("ber: indefinite length on a primitive")
		}
		return tag, constructed, -1, i, false, nil
	case l == 0xff:
		return nil, false, 0, 0, false, errors.New("ber: reserved length")
	}
	nb := int(l & 0x7f)
	if nb > 4 || i+nb > len(in) {
		return nil, false, 0, 0, false, errors.New("ber: bad long length")
	}
	v := 0
	for _, b := range in[i : i+nb] {
		v = v<<8 | int(b)
	}
	i += nb
	minimal = v >= 0x80 && in[i-nb] != 0
	if v > len(in)-i {
		return nil, false, 0, 0, false, errors.New("ber: length exceeds input")
	}
	return tag, constructed, v, i, minimal, nil
}

// scanDER reports whether the element at the start of in needs no change by
// berToDER, and its size.
func scanDER(in []byte, depth int) (int, bool, error) {
	if depth > maxBERDepth {
		return 0, false, errors.New("ber: nested too deeply")
	}
	tag, constructed, length, hdr, minimal, err := berHeader(in)
	if err != nil || !minimal {
		return 0, false, err
	}
	if !constructed {
		return hdr + length, true, nil
	}
	if len(tag) == 1 && tag[0] == 0x24 { // constructed OCTET STRING
		return 0, false, nil
	}
	body := in[hdr : hdr+length]
	for len(body) > 0 {
		n, ok, err := scanDER(body, depth+1)
		if err != nil || !ok {
			return 0, false, err
		}
		body = body[n:]
	}
	return hdr + length, true, nil
}

// convertBER appends the DER-length form of the element at the start of in
// to out and returns the rest of in.
func convertBER(out, in []byte, depth int) ([]byte, []byte, error) {
	if depth > maxBERDepth {
		return nil, nil, errors.New("ber: nested too deeply")
	}
	tag, constructed, length, hdr, _, err := berHeader(in)
	if err != nil {
		return nil, nil, err
	}
	if !constructed {
		out = append(out, tag...)
		out = appendLength(out, length)
		return append(out, in[hdr:hdr+length]...), in[hdr+length:], nil
	}
	var body, rest []byte
	if length >= 0 {
		body, rest = in[hdr:hdr+length], in[hdr+length:]
	} else {
		body = in[hdr:]
	}
	flatten := len(tag) == 1 && tag[0] == 0x24
	var content []byte
	for {
		if length < 0 {
			if len(body) < 2 {
				return nil, nil, errors.New("ber: missing end-of-contents")
			}
			if body[0] == 0 && body[1] == 0 {
				rest = body[2:]
				break
			}
		} else if len(body) == 0 {
			break
		}
		if flatten {
			var child []byte
			if child, body, err = convertBER(nil, body, depth+1); err != nil {
				return nil, nil, err
			}
			if child[0] != 0x04 {
				return nil, nil, errors.New("ber: constructed OCTET STRING holds a non-OCTET STRING")
			}
			_, _, l, h, _, _ := berHeader(child)
			content = append(content, child[h:h+l]...)
			continue
		}
		if content, body, err = convertBER(content, body, depth+1); err != nil {
			return nil, nil, err
		}
	}
	if flatten {
		out = append(out, 0x04)
	} else {
		out = append(out, tag...)
	}
	out = appendLength(out, len(content))
	return append(out, content...), rest, nil
}

// appendLength appends a DER length.
func appendLength(out []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(out, byte(n))
	case n < 1<<8:
		return append(out, 0x81, byte(n))
	case n < 1<<16:
		return append(out, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
