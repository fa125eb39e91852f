package follow

import "errors"

// The reasons a sync fails or falls back to the snapshot; errors wrap
// them, test with errors.Is.
var (
	// ErrCrossOrigin: a snapshot or delta URI on another origin than the
	// notification (RFC 9674).
	ErrCrossOrigin = errors.New("file on another origin than the notification")
	// ErrOutside: in transparent mode, a snapshot or delta URI that the
	// proxy cannot serve at the origin's own path: outside the directory
	// of the notification, with a query or fragment, or not in clean
	// form.
	ErrOutside = errors.New("file outside the notification's directory")
	// ErrHash: a file whose SHA-256 differs from the notification's.
	ErrHash = errors.New("hash mismatch")
	// ErrMismatch: a file whose kind, session or serial is not the one
	// the notification names.
	ErrMismatch = errors.New("file does not match the notification")
	// ErrReplace: a publish or withdraw whose hash is not that of the
	// object it replaces, or that names no object.
	ErrReplace = errors.New("replaced object hash mismatch")
	// ErrOverwrite: a publish without hash for an object that exists.
	ErrOverwrite = errors.New("publish without hash overwrites an object")
	// ErrGap: the deltas listed do not chain from the current serial.
	ErrGap = errors.New("deltas do not chain")
	// ErrNotNotification: the notification URL gave another kind of file.
	ErrNotNotification = errors.New("not a notification")
)

// ErrOrder: a head whose serial is not above the last one published in
// the same served session; publishing it would change bytes already
// served for a session and serial.
var ErrOrder = errors.New("serial does not grow within the served session")

// ErrHeld: a Store holds the head back, a valid serial it does not
// publish yet (the validation gate, proxy/validate), until an operator
// releases it. The follower keeps its state and the old head, retries at
// its interval (no back-off: the next serial upstream must not be seen
// late) and never falls back to the snapshot for it, which would only
// fetch the same state again.
var ErrHeld = errors.New("serial held back by the store")
