package diskstore

import (
	"context"
	"fmt"
	"io/fs"
)

// Hold leases the blobs sums of the retained file whose key is key for a
// response that streams it (cache.Cache.Hold): until release is called,
// neither the cap nor GC removes them, so that a response that has begun
// ends with the file's bytes even when the cap drops the file meanwhile
// (its head then stops naming it, and new requests get 404). A leased
// blob stays counted against the cap; the first pass after the release
// removes it if nothing else needs it.
//
// A lease is bookkeeping in memory, not an open file: a composite file
// has one blob per part, thousands for a big snapshot, and a descriptor
// per part and response would run into the process's limit.
//
// Hold fails with an error wrapping fs.ErrNotExist when the store dropped
// the file or lacks one of its blobs. release may be called more than
// once; leases do not outlive the process (Open counts none).
func (s *Store) Hold(ctx context.Context, key [32]byte, sums [][32]byte) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("diskstore: hold %x: %w", key[:8], err)
	}
	// A pass or GC holds mu for writing: none runs between the check and
	// the lease.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.gone.has(key) {
		return nil, fmt.Errorf("diskstore: hold %x: dropped to keep to the cap: %w", key[:8], fs.ErrNotExist)
	}
	l := &s.led
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sum := range sums {
		if _, ok := l.blobs[sum]; !ok {
			return nil, fmt.Errorf("diskstore: hold %x: blob %x: %w", key[:8], sum[:8], fs.ErrNotExist)
		}
	}
	for _, sum := range sums {
		l.leases[sum]++
	}
	done := false
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if done {
			return
		}
		done = true
		for _, sum := range sums {
			if l.leases[sum]--; l.leases[sum] <= 0 {
				delete(l.leases, sum)
			}
		}
		l.held = false
		l.releases++
	}, nil
}

// leased returns the blobs responses hold, and the count of leases
// ended so far (for waitRelease).
func (l *ledger) leased() ([][32]byte, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sums := make([][32]byte, 0, len(l.leases))
	for sum := range l.leases {
		sums = append(sums, sum)
	}
	return sums, l.releases
}

// waitRelease records that a pass stopped above the cap for the leases it
// read when releases lease ends had happened: unless one ended since, in
// which case the next pass may free its blobs and must not be skipped.
func (l *ledger) waitRelease(releases uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.releases == releases {
		l.held = true
	}
}

// waitsForRelease reports whether the last pass stopped above the cap
// because of leased blobs, with no lease ended since.
func (l *ledger) waitsForRelease() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// heldBytes returns the bytes of the blobs responses hold.
func (s *Store) heldBytes() int64 {
	l := &s.led
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for sum := range l.leases {
		n += l.blobs[sum]
	}
	return n
}
