package proxy

import "errors"

var (
	// ErrConfig: a Config or Repo that cannot be served.
	ErrConfig = errors.New("invalid configuration")
	// ErrNotNamed: a pull-through request for a path the origin's
	// notification does not name.
	ErrNotNamed = errors.New("not named by the origin's notification")
	// ErrPullHash: a pulled file whose SHA-256 differs from the hash the
	// origin's notification gives for it.
	ErrPullHash = errors.New("pulled file does not match the origin's hash")
	// ErrNoHead: a repository without a verified state yet.
	ErrNoHead = errors.New("no verified state yet")
)
