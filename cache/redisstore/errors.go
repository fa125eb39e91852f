package redisstore

import "errors"

// ErrNotHeld: a Renew, Release or fenced PutHead by a node that does not
// hold the repository's lease (any more), or with a stale token. Test with
// errors.Is.
var ErrNotHeld = errors.New("lease not held")
