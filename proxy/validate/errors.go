package validate

import (
	"fmt"
	"io/fs"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

var (
	// ErrHeld: the gate holds the serial back (see HoldError).
	// It wraps follow.ErrHeld, so that the follower neither backs off nor
	// falls back to the snapshot for a held serial.
	ErrHeld = fmt.Errorf("serial held by the validation gate: %w", follow.ErrHeld)
	// ErrNotHeld: Release for a repository that has no held serial.
	ErrNotHeld = fmt.Errorf("no serial held: %w", fs.ErrNotExist)
)

// HoldError is the error PutHead returns for a held serial: which
// repository and serial, and the rules it breaks.
type HoldError struct {
	Repo   string
	Serial uint64
	Why    []string
}

func (e *HoldError) Error() string {
	msg := "validation gate holds " + e.Repo + " serial " + uitoa(e.Serial)
	for i, w := range e.Why {
		if i == 0 {
			msg += ": "
		} else {
			msg += "; "
		}
		msg += w
	}
	return msg
}

// Unwrap returns ErrHeld.
func (e *HoldError) Unwrap() error { return ErrHeld }
