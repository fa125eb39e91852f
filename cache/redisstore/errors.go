package redisstore

import "errors"

// ErrNotHeld: a Renew, Release or fenced PutHead by a node that does not
// hold the repository's lease (any more), or with a stale token. Test with
// errors.Is.
var ErrNotHeld = errors.New("lease not held")

// ErrMissing: a PutHead whose head names a blob that is not stored (never
// put, collected, evicted, or removed by a reader that found it damaged).
// Test with errors.Is; Missing says which.
var ErrMissing = errors.New("blob not stored")

// ErrHeadless: a GC that removed nothing because a repository in the set
// of repositories has no head (its key evicted, or deleted without
// DeleteHead). Test with errors.Is; GCStats.Headless says which.
var ErrHeadless = errors.New("repository without a head")

// ErrBadHead: a head key whose value cannot be decoded, or names another
// repository. Head returns it (test with errors.Is); Heads and GC skip and
// count such heads; the holder of the lease writes its head over it.
var ErrBadHead = errors.New("head cannot be read")
