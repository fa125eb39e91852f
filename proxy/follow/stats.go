package follow

import (
	"context"
	"errors"
	"io"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// errStore marks a failure of the Store, not of the origin.
var errStore = errors.New("store failure")

// fail counts err by kind and returns it.
func (f *Follower) fail(err error) error {
	f.classify(err)
	return err
}

// classify counts err in the Stats field of its kind. Cancellation of
// the sync's own context is not a failure of the origin.
func (f *Follower) classify(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	var ue *upstream.Error
	f.count(func(s *Stats) {
		switch {
		case errors.Is(err, errStore):
			s.StoreFailures++
		case errors.Is(err, upstream.ErrTimeout), errors.Is(err, upstream.ErrTooSlow), errors.Is(err, context.DeadlineExceeded):
			s.Timeouts++
		case errors.Is(err, upstream.ErrTooLarge):
			s.TooLarge++
		case errors.Is(err, upstream.ErrStatus):
			s.HTTPStatus++
		case errors.Is(err, upstream.ErrRedirect):
			s.Redirects++
		case errors.Is(err, upstream.ErrGzip), errors.Is(err, io.ErrUnexpectedEOF):
			s.Truncated++
		case errors.Is(err, ErrHash):
			s.HashMismatches++
		case errors.Is(err, ErrCrossOrigin):
			s.CrossOrigin++
		case errors.As(err, &ue) && ue.Op == "get":
			s.Unreachable++
		case errors.As(err, &ue):
			s.Truncated++ // the body broke off
		default:
			s.Invalid++
		}
	})
}
