package diskstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// GCStats says what one GC did.
type GCStats struct {
	Kept, Removed int
	RemovedBytes  int64
}

// GC removes the blobs that no head needs: those no head names, or names only
// as a file whose retention ended, and that were not put within Grace. It
// lists the directory, and counts the blobs again from that listing.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.led
	for name, err := range l.broken {
		return st, fmt.Errorf("diskstore: gc: head %s: %w", name, err)
	}
	now := s.now()
	keep := make(map[[32]byte]bool)
	var sums [][32]byte // one list and one buffer for every file (appendBlobsOf)
	var buf []byte
	for _, h := range l.heads {
		for i := range h.Files {
			f := &h.Files[i]
			if !f.Live(now) {
				continue
			}
			// A part list that cannot be read keeps nothing of its parts:
			// the file cannot be served from here without it anyway.
			var err error
			if sums, err = s.appendBlobsOf(sums[:0], &buf, f); err != nil {
				sums = append(sums[:0], f.Key())
			}
			for _, sum := range sums {
				keep[sum] = true
			}
		}
	}
	for sum, t := range l.pending {
		if now.Sub(t) < s.grace {
			keep[sum] = true
		}
	}
	leased, _ := l.leased()
	for _, sum := range leased {
		keep[sum] = true
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, blobDir))
	if err != nil {
		return st, fmt.Errorf("diskstore: gc: list blobs: %w", err)
	}
	// Puts wait for the lock: the listing is exact, and the ledger follows
	// it from here.
	listed := make(map[[32]byte]int64, len(ents))
	defer func() { s.recount(listed) }()
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		sum, ok := parseBlobName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		if keep[sum] || now.Sub(info.ModTime()) < s.grace {
			listed[sum] = info.Size()
			st.Kept++
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, blobDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			listed[sum] = info.Size()
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		st.Removed++
		st.RemovedBytes += info.Size()
	}
	if st.Removed > 0 {
		if err := syncDir(filepath.Join(s.dir, blobDir)); err != nil {
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
	}
	return st, nil
}

// recount makes the ledger count the blobs of listed, a listing made
// under Store.mu held for writing.
func (s *Store) recount(listed map[[32]byte]int64) {
	l := &s.led
	l.mu.Lock()
	defer l.mu.Unlock()
	var size int64
	for _, n := range listed {
		size += n
	}
	for sum := range l.blobs {
		if _, ok := listed[sum]; !ok {
			delete(l.lists, sum)
			delete(l.pending, sum)
		}
	}
	l.blobs = listed
	s.size.Store(size)
	s.count.Store(int64(len(listed)))
}

// Run collects garbage (GC) every Config.GCInterval until ctx ends, logging
// failures, and returns ctx's error. Over the cap after a collection, it
// makes room.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			st, err := s.GC(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.logger.Warn("diskstore: gc failed", "err", err)
				continue
			}
			if st.Removed > 0 {
				s.logger.Info("diskstore: gc", "removed", st.Removed, "bytes", st.RemovedBytes, "kept", st.Kept)
			}
			if s.full(0) {
				s.makeRoom(0)
			}
		}
	}
}
