package diskstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkOpen: Open counts a directory of one repository after n
// serials of a 100-part composite snapshot (three blobs each: a part, the
// part list, a delta; nothing collected) whose head retains the last 200;
// the time grows with the blobs listed.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("serials=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(Config{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			p := newSerialsSized(b, "https://a.example/notification.xml", 1, time.Now(), 100, 200)
			for range n {
				p.next(context.Background(), s)
				if len(p.retained) > 400 {
					p.retained = p.retained[2:]
				}
			}
			blobs := s.Count()
			for b.Loop() {
				if _, err := Open(Config{Dir: dir, MaxBytes: 1 << 40}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(blobs), "blobs")
		})
	}
}

// BenchmarkPass: one pass of the cap over a repository with n retained
// serials of a 100-part composite snapshot, all of which fit (the longest
// walk: every retained file weighed, nothing removed).
func BenchmarkPass(b *testing.B) {
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("retained=%d", n), func(b *testing.B) {
			s, err := Open(Config{Dir: b.TempDir(), MaxBytes: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			p := newSerialsSized(b, "https://a.example/notification.xml", 1, time.Now(), 100, 200)
			for range n + 1 {
				p.next(context.Background(), s)
			}
			for b.Loop() {
				s.mu.Lock()
				s.pass(0, 0)
				s.mu.Unlock()
			}
			if s.Cap().Evictions != 0 {
				b.Fatalf("the pass dropped %d files", s.Cap().Evictions)
			}
		})
	}
}
