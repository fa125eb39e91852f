package repotest

import (
	"errors"
	"testing"
)

func TestOrderedMap(t *testing.T) {
	errBoom := errors.New("boom")
	for _, c := range []struct {
		name       string
		n, workers int
		failAt     int // -1: never
	}{
		{"empty", 0, 2, -1},
		{"one worker", 50, 1, -1},
		{"more work than window", 1000, 3, -1},
		{"error early", 1000, 2, 3},
		{"error late", 100, 4, 99},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			err := orderedMap(c.n, c.workers, func(i int) (int, error) {
				if i == c.failAt {
					return 0, errBoom
				}
				return i * i, nil
			}, func(i, v int) error {
				if v != i*i {
					t.Errorf("emit(%d, %d), want value %d", i, v, i*i)
				}
				got = append(got, i)
				return nil
			})
			wantN := c.n
			if c.failAt >= 0 {
				wantN = c.failAt
				if !errors.Is(err, errBoom) {
					t.Errorf("got error %v, want %v", err, errBoom)
				}
			} else if err != nil {
				t.Errorf("got error %v", err)
			}
			if len(got) != wantN {
				t.Fatalf("emitted %d results, want %d", len(got), wantN)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("emitted %d at position %d: out of order", v, i)
				}
			}
		})
	}
}

func TestParallelFor(t *testing.T) {
	seen := make([]bool, 500)
	if err := parallelFor(len(seen), 4, func(i int) error { seen[i] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("index %d not run", i)
		}
	}
	errBoom := errors.New("boom")
	if err := parallelFor(100, 3, func(i int) error {
		if i == 50 {
			return errBoom
		}
		return nil
	}); !errors.Is(err, errBoom) {
		t.Errorf("got %v, want %v", err, errBoom)
	}
}

// BenchmarkCreateSmall measures building and writing a small repository
// whose keys are cached: signatures, encoding and I/O.
func BenchmarkCreateSmall(b *testing.B) {
	p, err := LookupProfile("small")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Create(b.TempDir(), Config{Profile: p, Seed: 1, BaseURL: testBaseURL}, testNow, Options{KeyCache: keyCache}); err != nil {
			b.Fatal(err)
		}
	}
}
