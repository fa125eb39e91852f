package upstream

import (
	"errors"
	"fmt"
)

// The causes a fetch fails with, wrapped in an *Error; test them with
// errors.Is.
var (
	ErrTooLarge = errors.New("body over the size cap")
	ErrTimeout  = errors.New("deadline exceeded")
	ErrTooSlow  = errors.New("transfer below the minimum rate")
	ErrStatus   = errors.New("unexpected HTTP status")
	ErrRedirect = errors.New("redirect refused")
	ErrGzip     = errors.New("bad gzip encoding")
	ErrURL      = errors.New("bad URL")
)

// Error is a failed fetch: the operation ("get" up to the response
// headers, "read" for the body), the URL it concerned and the cause.
type Error struct {
	Op  string
	URL string
	Err error
}

func (e *Error) Error() string { return e.Op + " " + e.URL + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// StatusError is an answer with an unexpected HTTP status, the cause in an
// *Error; errors.Is(err, ErrStatus) holds for it.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("%v %d", ErrStatus, e.Code) }

// Is reports target == ErrStatus.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }
