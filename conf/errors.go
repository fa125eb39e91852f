package conf

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about the content of a
// configuration.
var ErrInvalid = errors.New("invalid configuration")

// Error is one mistake in a configuration file: where it is and what is
// wrong. Parse returns one Error, or several joined with errors.Join.
type Error struct {
	File string // the name given to Parse
	Line int    // 1-based
	Key  string // dotted path, repositories indexed from 0: "repository[1].origin"
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
}

func (e *Error) Unwrap() []error { return []error{e.Err, ErrInvalid} }

// Errors returns the *Error values err holds, in order.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}
