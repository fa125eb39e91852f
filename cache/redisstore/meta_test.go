package redisstore

import (
	"strconv"
	"testing"
)

func TestParseMeta(t *testing.T) {
	tests := []struct {
		meta         string
		size, chunks int
		ok           bool
	}{
		{"0 0", 0, 0, true},
		{"10 1", 10, 1, true},
		{"20000000 20", 20000000, 20, true},
		{"", 0, 0, false},
		{"12", 0, 0, false},
		{"0 1", 0, 0, false},
		{"1 0", 0, 0, false},
		{"2 3", 0, 0, false},
		{"-1 1", 0, 0, false},
		{"1 1 1", 0, 0, false},
		{"99999999999 1", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.meta), func(t *testing.T) {
			size, chunks, err := parseMeta(tt.meta)
			if (err == nil) != tt.ok || size != tt.size || chunks != tt.chunks {
				t.Fatalf("got %d, %d, %v; want %d, %d, ok %v", size, chunks, err, tt.size, tt.chunks, tt.ok)
			}
		})
	}
}

func FuzzParseMeta(f *testing.F) {
	for _, s := range []string{"0 0", "10 1", "20000000 20", "12", "2 3", "+1 1", "01 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, meta string) {
		size, chunks, err := parseMeta(meta)
		if err != nil {
			return
		}
		if size < 0 || size > maxBlob || chunks < 0 || chunks > size || (size > 0) != (chunks > 0) {
			t.Fatalf("%q: accepted size %d, chunks %d", meta, size, chunks)
		}
	})
}
