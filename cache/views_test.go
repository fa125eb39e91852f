package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestViews(t *testing.T) {
	ctx := context.Background()
	a, b := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 50)
	blobs := map[[32]byte][]byte{sha256.Sum256(a): a, sha256.Sum256(b): b}
	get := func(_ context.Context, sum [32]byte) ([]byte, error) {
		if x, ok := blobs[sum]; ok {
			return x, nil
		}
		return nil, fmt.Errorf("blob %x: %w", sum[:4], errNotFound)
	}
	file := func(parts []Part, size int64) *File {
		list := EncodeParts(parts)
		sum := sha256.Sum256(list)
		blobs[sum] = list
		return &File{Path: "f", Size: size, Index: sum}
	}
	parts := []Part{{Data: []byte("head"), Size: 4}, {Sum: sha256.Sum256(a), Size: 100}, {Sum: sha256.Sum256(b), Size: 50}}
	v, err := OpenViews(ctx, file(parts, 154), get)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(v.Reader())
	if want := append(append([]byte("head"), a...), b...); err != nil || !bytes.Equal(all, want) {
		t.Fatalf("Reader: %d bytes, %v; want the parts joined (%d bytes)", len(all), err, len(want))
	}
	for _, tc := range []struct {
		off  int64
		n    int
		part int
		ok   bool
	}{
		{0, 4, 0, false},    // inline: not a blob
		{4, 100, 1, true},   // the whole first blob
		{10, 5, 1, true},    // inside it
		{100, 8, 0, false},  // across two parts
		{104, 50, 2, true},  // the second blob
		{150, 10, 0, false}, // past the end
	} {
		got, i, ok := v.View(tc.off, tc.n)
		if ok != tc.ok || ok && (i != tc.part || !bytes.Equal(got, all[tc.off:tc.off+int64(tc.n)]) || cap(got) != tc.n) {
			t.Errorf("View(%d, %d): part %d, ok %v, %d bytes of capacity %d; want part %d, ok %v", tc.off, tc.n, i, ok, len(got), cap(got), tc.part, tc.ok)
		}
		if ok && &got[0] != &v.Blob(i)[tc.off-[]int64{0, 4, 104}[i]] {
			t.Errorf("View(%d, %d) is a copy, want a slice of the part", tc.off, tc.n)
		}
	}
	if _, err := OpenViews(ctx, file(parts, 153), get); !errors.Is(err, ErrParts) {
		t.Errorf("a part list whose sizes do not add up to the file's: got %v, want ErrParts", err)
	}
	short := []Part{{Sum: sha256.Sum256(a), Size: 99}}
	if _, err := OpenViews(ctx, file(short, 99), get); !errors.Is(err, ErrParts) {
		t.Errorf("a blob of another size than its part says: got %v, want ErrParts", err)
	}
	missing := []Part{{Sum: sha256.Sum256([]byte("none")), Size: 4}}
	if _, err := OpenViews(ctx, file(missing, 4), get); !errors.Is(err, errNotFound) {
		t.Errorf("a missing part: got %v, want the getter's error", err)
	}
}

var errNotFound = errors.New("not found")
