package cache

import "errors"

// ErrSum: a blob whose SHA-256 is not its key, put by a caller or read from a
// lower tier. Test with errors.Is; a missing blob is fs.ErrNotExist.
var ErrSum = errors.New("content does not match its key")
