package rrdpxml

import (
	"errors"
	"fmt"
	"strconv"
)

// The reasons a decoder rejects its input. A rejection is a *SyntaxError
// whose Err wraps exactly one of these, so callers test it with errors.Is.
var (
	// XML features RRDP has no use for, refused as a matter of safety.
	ErrDoctype  = errors.New("DOCTYPE not allowed")
	ErrEntity   = errors.New("entity not allowed")
	ErrProcInst = errors.New("processing instruction not allowed")
	ErrCDATA    = errors.New("CDATA section not allowed")
	ErrEncoding = errors.New("encoding not UTF-8")

	// XML structure.
	ErrSyntax            = errors.New("malformed XML")
	ErrNamespace         = errors.New("wrong namespace")
	ErrUnknownElement    = errors.New("unknown element")
	ErrUnexpectedElement = errors.New("element not allowed here")
	ErrMismatchedTag     = errors.New("mismatched end tag")
	ErrUnknownAttr       = errors.New("unknown attribute")
	ErrDuplicateAttr     = errors.New("duplicate attribute")
	ErrMissingAttr       = errors.New("missing attribute")
	ErrText              = errors.New("text not allowed here")
	ErrTrailingData      = errors.New("data after the root element")
	ErrUnexpectedEOF     = errors.New("unexpected end of input")
	ErrKind              = errors.New("wrong kind of RRDP file")

	// RRDP values.
	ErrVersion      = errors.New("unsupported version")
	ErrSessionID    = errors.New("bad session_id")
	ErrSerial       = errors.New("bad serial")
	ErrBadHash      = errors.New("bad hash")
	ErrBadURI       = errors.New("bad uri")
	ErrBadBase64    = errors.New("bad base64")
	ErrEmptyContent = errors.New("publish without content")

	// RRDP rules across elements.
	ErrMissingHash     = errors.New("withdraw without hash")
	ErrUnexpectedHash  = errors.New("hash not allowed in a snapshot")
	ErrDuplicateURI    = errors.New("duplicate uri")
	ErrDuplicateSerial = errors.New("duplicate delta serial")
	ErrDeltaSerial     = errors.New("delta serial above notification serial")
	ErrNoSnapshot      = errors.New("notification without snapshot")
	ErrEmptyDelta      = errors.New("delta without publish or withdraw")

	// ErrTooLarge is returned when the input exceeds a Limits field or a
	// fixed cap of the decoder (a comment or a start tag too long).
	ErrTooLarge = errors.New("over limit")
)

// SyntaxError is a rejection of the input: what is wrong (Err, wrapping
// one of the package's sentinel errors) and where.
type SyntaxError struct {
	Line   int    // line of the fault, from 1
	Offset int64  // byte offset of the fault in the input, from 0
	URI    string // uri attribute of the element at fault, if known
	Err    error
}

// maxURIInError caps how much of a URI an error message repeats.
const maxURIInError = 256

func (e *SyntaxError) Error() string {
	b := make([]byte, 0, 96+len(e.URI))
	b = append(b, "rrdpxml: line "...)
	b = strconv.AppendInt(b, int64(e.Line), 10)
	b = append(b, ", byte "...)
	b = strconv.AppendInt(b, e.Offset, 10)
	if e.URI != "" {
		u := e.URI
		if len(u) > maxURIInError {
			u = u[:maxURIInError] + "..."
		}
		b = append(b, " (uri "...)
		if printableASCII(u) {
			b = append(b, u...)
		} else {
			b = strconv.AppendQuote(b, u)
		}
		b = append(b, ')')
	}
	b = append(b, ": "...)
	b = append(b, e.Err.Error()...)
	return string(b)
}

// Unwrap returns the cause, which wraps one of the sentinel errors.
func (e *SyntaxError) Unwrap() error { return e.Err }

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// errorf wraps a sentinel with detail: errorf(ErrBadURI, "no host") reads
// "bad uri: no host".
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
