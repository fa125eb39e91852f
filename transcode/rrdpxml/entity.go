package rrdpxml

import (
	"bytes"
	"unicode/utf8"
)

// maxRefLen caps the length of a reference, "&" to ";": "&#x10FFFF;" is
// the longest one accepted.
const maxRefLen = 12

// unescape appends src to dst with its references replaced. It accepts
// only the five predefined entities (&lt; &gt; &amp; &quot; &apos;) and
// character references to characters that are not control characters.
// On error it returns the offset in src of the bad reference.
func unescape(dst, src []byte) ([]byte, int, error) {
	for i := 0; i < len(src); {
		j := bytes.IndexByte(src[i:], '&')
		if j < 0 {
			dst = append(dst, src[i:]...)
			break
		}
		dst = append(dst, src[i:i+j]...)
		i += j
		r, n, err := reference(src[i:])
		if err != nil {
			return dst, i, err
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst, 0, nil
}

// reference decodes the reference that starts s ("&name;", "&#n;" or
// "&#xh;") and returns its character and its length.
func reference(s []byte) (rune, int, error) {
	end := bytes.IndexByte(s[:min(len(s), maxRefLen)], ';')
	if end < 0 {
		return 0, 0, errorf(ErrEntity, "'&' not starting a reference")
	}
	name := s[1:end]
	switch string(name) {
	case "lt":
		return '<', end + 1, nil
	case "gt":
		return '>', end + 1, nil
	case "amp":
		return '&', end + 1, nil
	case "quot":
		return '"', end + 1, nil
	case "apos":
		return '\'', end + 1, nil
	}
	if len(name) < 2 || name[0] != '#' {
		if printableASCII(string(name)) {
			return 0, 0, errorf(ErrEntity, "unknown entity &%s;", name)
		}
		return 0, 0, errorf(ErrEntity, "unknown entity %q", s[:end+1])
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return 0, 0, errorf(ErrEntity, "bad character reference %q", s[:end+1])
	}
	var r rune
	for _, c := range digits {
		v := rune(unhex[c])
		if v >= base {
			return 0, 0, errorf(ErrEntity, "bad character reference %q", s[:end+1])
		}
		r = r*base + v
		if r > utf8.MaxRune {
			return 0, 0, errorf(ErrEntity, "character reference %q beyond Unicode", s[:end+1])
		}
	}
	if !xmlChar(r) {
		return 0, 0, errorf(ErrEntity, "character reference %q to U+%04X, not allowed", s[:end+1], r)
	}
	return r, end + 1, nil
}

// xmlChar accepts the characters of XML 1.0 (Char) less the control
// characters: no C0 (whitespace included), DEL or C1 character, no
// surrogate, no U+FFFE or U+FFFF.
func xmlChar(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return false
	case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
		return false
	}
	return r <= utf8.MaxRune
}
