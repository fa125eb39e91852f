package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
)

// TestHoldDropped: with a capped state directory, Hold refuses a retained
// file the directory dropped to keep to its cap and one whose retention
// ended, and holds a retained file it keeps; Stats reports the cap and
// what a hold keeps.
func TestHoldDropped(t *testing.T) {
	ctx := context.Background()
	const size = 10 << 10
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	// Room for the current file and one retained one, with their heads.
	disk, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), MaxBytes: 2*size + size/2, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, cache.Config{Tiers: []cache.Tier{disk}, Now: clock})
	r := rand.New(rand.NewPCG(8, 8))
	var files []cache.File
	for i := range 3 {
		b, sum := blob(r, size)
		if err := c.PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
		for j := range files {
			if files[j].Expires.IsZero() {
				files[j].Expires = now.Add(2 * time.Hour)
			}
		}
		files = append(files, file(fmt.Sprintf("%d/snapshot.xml", i), sum, size, time.Time{}))
		if err := c.PutHead(ctx, "r", &cache.Head{Repo: "r", Serial: uint64(i + 1), Time: now, Files: slices.Clone(files)}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	for i, want := range []bool{false, true} {
		if lost := c.Lost(&files[i]); lost == want {
			t.Errorf("Lost(serial %d's retained snapshot): got %v, want %v", i+1, lost, !want)
		}
		release, got := c.Hold(ctx, &files[i])
		if got != want {
			t.Errorf("Hold(serial %d's retained snapshot): got %v, want %v", i+1, got, want)
		}
		if got {
			if st := c.Stats(); st.TierCaps[0].Held != size {
				t.Errorf("held: Stats.TierCaps[0].Held %d, want %d", st.TierCaps[0].Held, size)
			}
			release()
		}
	}
	now = now.Add(3 * time.Hour)
	if _, ok := c.Hold(ctx, &files[1]); ok {
		t.Errorf("Hold(a retained snapshot whose retention ended): got true, want false")
	}
	st := c.Stats()
	if len(st.TierCaps) != 1 || st.TierCaps[0].Max != 2*size+size/2 || st.TierCaps[0].Evictions != 1 ||
		st.TierCaps[0].Current != size || st.TierCaps[0].Held != 0 {
		t.Errorf("Stats.TierCaps: got %+v, want the cap, 1 eviction, the current file, nothing held", st.TierCaps)
	}
}

// TestHoldPinned: without a state directory, a retained file pinned in
// memory and held stays pinned when a newer head leaves no room for it,
// until every hold is released.
func TestHoldPinned(t *testing.T) {
	ctx := context.Background()
	const size = 100 << 10
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Room to pin one retained file.
	c := newCache(t, cache.Config{MaxBytes: size + size/2, Now: func() time.Time { return now }})
	r := rand.New(rand.NewPCG(11, 11))
	var files []cache.File
	put := func(serial int) {
		t.Helper()
		b, sum := blob(r, size)
		if err := c.PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
		for j := range files {
			if files[j].Expires.IsZero() {
				files[j].Expires = now.Add(2 * time.Hour)
			}
		}
		files = append(files, file(fmt.Sprintf("%d/snapshot.xml", serial), sum, size, time.Time{}))
		if err := c.PutHead(ctx, "r", &cache.Head{Repo: "r", Serial: uint64(serial), Time: now, Files: slices.Clone(files)}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	put(1)
	put(2) // serial 1's file retained, pinned
	release, ok := c.Hold(ctx, &files[0])
	if !ok {
		t.Fatal("Hold(serial 1's pinned retained file): got false")
	}
	put(3) // serial 2's file takes the room; serial 1's is held
	if got, want := c.Stats().PinnedBytes, int64(3*size); got != want {
		t.Errorf("held: PinnedBytes %d, want %d (the current file, serial 2's and the held one)", got, want)
	}
	// A second response while the first holds it: its bytes are pinned.
	again, ok := c.Hold(ctx, &files[0])
	if !ok {
		t.Fatal("Hold(serial 1's file while held): got false")
	}
	release()
	release() // a second call does nothing
	if got, want := c.Stats().PinnedBytes, int64(3*size); got != want {
		t.Errorf("one of two holds released: PinnedBytes %d, want %d", got, want)
	}
	again()
	if got, want := c.Stats().PinnedBytes, int64(2*size); got != want {
		t.Errorf("released: PinnedBytes %d, want %d", got, want)
	}
	if _, ok := c.Hold(ctx, &files[0]); ok {
		t.Errorf("Hold(serial 1's file, released and pinned by no head): got true, want false")
	}
}
