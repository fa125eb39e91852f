package rrdpxml

// The attribute values of RFC 8182 and how strictly they are read. The
// functions take string or []byte so that the decoder (bytes in its
// window) and the Writer (strings from the caller) apply the same rules.

// text is what the value checkers accept.
type text interface{ ~string | ~[]byte }

// parseSerial reads a serial: a positive decimal integer (RFC 8182 uses
// xsd:positiveInteger) that fits an uint64, in canonical form: no sign, no
// leading zero, no whitespace.
func parseSerial[T text](v T) (uint64, error) {
	if len(v) == 0 {
		return 0, errorf(ErrSerial, "empty")
	}
	if v[0] == '0' {
		if len(v) == 1 {
			return 0, errorf(ErrSerial, "0 is not a positive integer")
		}
		return 0, errorf(ErrSerial, "leading zero in %q", string(v))
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, errorf(ErrSerial, "%q is not a decimal integer", string(v))
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, errorf(ErrSerial, "%q overflows 64 bits", string(v))
		}
		n = n*10 + d
	}
	return n, nil
}

// parseSessionID reads a session_id: a UUID in its 8-4-4-4-12 hex form
// (RFC 9562 text form, any version). Hex digits of either case are
// accepted, as RFC 9562 asks; the result is lowercase.
func parseSessionID[T text](v T) (string, error) {
	if len(v) != 36 {
		return "", errorf(ErrSessionID, "%q is not a UUID", string(v))
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := v[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", errorf(ErrSessionID, "%q is not a UUID", string(v))
			}
		default:
			if unhex[c] > 15 {
				return "", errorf(ErrSessionID, "%q is not a UUID", string(v))
			}
			if c >= 'A' && c <= 'F' {
				c += 'a' - 'A'
			}
		}
		b[i] = c
	}
	return string(b[:]), nil
}

// parseHash reads a hash attribute: a SHA-256 as exactly 64 hex digits of
// either case.
func parseHash[T text](v T) ([32]byte, error) {
	var h [32]byte
	if len(v) != 64 {
		return h, errorf(ErrBadHash, "%d characters, want 64 hex digits", len(v))
	}
	for i := 0; i < 32; i++ {
		hi, lo := unhex[v[2*i]], unhex[v[2*i+1]]
		if hi > 15 || lo > 15 {
			return h, errorf(ErrBadHash, "not hex: %q", string(v))
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

// checkURI checks a URI of a publish or withdraw (rsync, https false) or
// of a notification's snapshot or delta (https true):
//
//   - at most maxLen bytes;
//   - the scheme exactly "rsync://" or "https://" (lowercase);
//   - a host of letters, digits, '-', '.', '_', '~', an optional
//     port, or a bracketed IP literal; no user info;
//   - a path starting with '/'; an rsync URI names a file, so its path
//     does not end in '/';
//   - only the characters RFC 3986 allows in a path (no control
//     characters, whitespace, non-ASCII, '"', '<', '>', '\', '^', '`',
//     '{', '|', '}'), '%' followed by two hex digits, no '#', and '?' only
//     in an https URI;
//   - no "." or ".." segment, written plainly or percent-encoded;
//   - no percent-encoded '/', '\\' or NUL, which a decoder would turn
//     into a segment boundary (hiding "..%2f" from the rule above).
func checkURI[T text](u T, https bool, maxLen int) error {
	if len(u) > maxLen {
		return errorf(ErrTooLarge, "uri longer than %d bytes", maxLen)
	}
	scheme := "rsync://"
	if https {
		scheme = "https://"
	}
	if len(u) < len(scheme) {
		return errorf(ErrBadURI, "not an %s uri", scheme)
	}
	for i := 0; i < len(scheme); i++ {
		if u[i] != scheme[i] {
			return errorf(ErrBadURI, "not an %s uri", scheme)
		}
	}
	i := len(scheme)
	hostStart := i
	for ; i < len(u) && u[i] != '/'; i++ {
		c := u[i]
		if uriClass[c]&classHost == 0 {
			return badURIChar(c, i)
		}
	}
	if i == hostStart {
		return errorf(ErrBadURI, "no host")
	}
	if c := u[hostStart]; uriClass[c]&classAlnum == 0 && c != '[' {
		return errorf(ErrBadURI, "host starts with %q", rune(c))
	}
	if i == len(u) {
		return errorf(ErrBadURI, "no path")
	}
	seg := i + 1 // start of the current path segment
	query := false
	for i++; i < len(u); i++ {
		c := u[i]
		switch {
		case c == '/':
			if !query {
				if err := checkSegment(u[seg:i]); err != nil {
					return err
				}
				seg = i + 1
			}
		case c == '%':
			if i+2 >= len(u) || unhex[u[i+1]] > 15 || unhex[u[i+2]] > 15 {
				return errorf(ErrBadURI, "bad percent-encoding at byte %d", i)
			}
			// An encoded separator ("%2f", "%5c") or NUL would
			// become a path segment boundary, or worse, once a
			// consumer decodes the path: "..%2f" hides a ".."
			// segment from the dot-segment rule.
			if b := unhex[u[i+1]]<<4 | unhex[u[i+2]]; b == '/' || b == '\\' || b == 0 {
				return errorf(ErrBadURI, "encoded %q at byte %d", rune(b), i)
			}
			i += 2
		case c == '?' && https:
			if !query {
				if err := checkSegment(u[seg:i]); err != nil {
					return err
				}
				query = true
			}
		case uriClass[c]&classPath == 0:
			return badURIChar(c, i)
		}
	}
	if !query {
		if err := checkSegment(u[seg:]); err != nil {
			return err
		}
		if !https && seg == len(u) {
			return errorf(ErrBadURI, "names a directory, not a file")
		}
	}
	return nil
}

func badURIChar(c byte, at int) error {
	switch {
	case c < 0x20 || c == 0x7f:
		return errorf(ErrBadURI, "control character 0x%02x at byte %d", c, at)
	case c == ' ':
		return errorf(ErrBadURI, "space at byte %d", at)
	case c >= 0x80:
		return errorf(ErrBadURI, "non-ASCII byte 0x%02x at byte %d", c, at)
	}
	return errorf(ErrBadURI, "character %q not allowed at byte %d", rune(c), at)
}

// checkSegment rejects the dot segments "." and "..", also when their dots
// are percent-encoded ("%2e", "%2E").
func checkSegment[T text](s T) error {
	if len(s) == 0 || len(s) > 6 {
		return nil
	}
	dots := 0
	for i := 0; i < len(s); {
		switch {
		case s[i] == '.':
			i++
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '2' && (s[i+2] == 'e' || s[i+2] == 'E'):
			i += 3
		default:
			return nil
		}
		dots++
	}
	if dots <= 2 {
		return errorf(ErrBadURI, "%q path segment", string(s))
	}
	return nil
}

// Character classes of URI bytes.
const (
	classAlnum = 1 << iota
	classHost  // allowed in the host and port
	classPath  // allowed in the path (besides '%' and '?')
)

var uriClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			t[c] = classAlnum | classHost | classPath
		}
	}
	for _, c := range []byte("-._~") { // unreserved
		t[c] |= classHost | classPath
	}
	for _, c := range []byte(":[]") {
		t[c] |= classHost
	}
	for _, c := range []byte("!$&'()*+,;=:@/") { // sub-delims, ':', '@', '/'
		t[c] |= classPath
	}
	return t
}()

// unhex maps a hex digit of either case to its value, anything else to 0xff.
var unhex = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c >= '0' && c <= '9':
			t[c] = uint8(c - '0')
		case c >= 'a' && c <= 'f':
			t[c] = uint8(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			t[c] = uint8(c - 'A' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()
