package diskstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

// GCStats says what one GC did.
type GCStats struct {
	Kept, Removed int
	RemovedBytes  int64
}

// GC removes the blobs that no head needs: those no head names, or names only
// as a file whose retention ended, and that were not put within Grace.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	s.mu.Lock()
	defer s.mu.Unlock()
	heads, err := s.Heads(ctx)
	if err != nil {
		return st, fmt.Errorf("diskstore: gc: %w", err)
	}
	now := s.now()
	keep := make(map[[32]byte]bool)
	for _, h := range heads {
		// A part list that cannot be read keeps nothing of its parts: the
		// file cannot be served from here without it anyway.
		for _, sum := range cache.NeededLax(ctx, h, now, s.GetBlob) {
			keep[sum] = true
		}
	}
	sums, size, err := s.Blobs()
	if err != nil {
		return st, fmt.Errorf("diskstore: gc: %w", err)
	}
	// Puts wait for the lock: the listing is exact, and the counters
	// follow it from here.
	count := int64(len(sums))
	defer func() {
		s.size.Store(size)
		s.count.Store(count)
	}()
	for _, sum := range sums {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		if keep[sum] {
			st.Kept++
			continue
		}
		p := s.blobPath(sum)
		info, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		if now.Sub(info.ModTime()) < s.grace {
			st.Kept++
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
		st.Removed++
		st.RemovedBytes += info.Size()
		size -= info.Size()
		count--
	}
	if st.Removed > 0 {
		if err := syncDir(filepath.Join(s.dir, blobDir)); err != nil {
			return st, fmt.Errorf("diskstore: gc: %w", err)
		}
	}
	return st, nil
}

// Run collects garbage (GC) every Config.GCInterval until ctx ends, logging
// failures, and returns ctx's error.
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
		}
	}
}
