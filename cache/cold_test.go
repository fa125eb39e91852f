package cache_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
)

// TestPutCold: with a state directory, a blob put cold is on disk and not
// in memory; the head naming it switches without reading it (no fill);
// Warm reads it back and pins it (then served from memory, and counted
// as pinned); a head that no longer names it drops it from memory (not to
// the evictable part), and it still reads from the disk. A cold pin the sweep dropped before its head
// came is read on demand. Without a durable tier PutCold declines.
func TestPutCold(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	disk, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c := newCache(t, cache.Config{Tiers: []cache.Tier{disk}, Now: clock, PendingGrace: time.Minute})
	if !c.Cold() {
		t.Fatal("Cold: false with a state directory")
	}
	r := rand.New(rand.NewPCG(3, 3))
	const size = 4 << 10
	b1, s1 := blob(r, size)
	if ok, err := c.PutCold(ctx, s1, b1); !ok || err != nil {
		t.Fatalf("PutCold: %v, %v", ok, err)
	}
	if st := c.Stats(); st.ColdBytes != size || st.PendingBytes != size {
		t.Errorf("after PutCold: cold %d, pending %d bytes; want %d, %d", st.ColdBytes, st.PendingBytes, size, size)
	}
	fills := c.Stats().Fills
	if err := c.PutHead(ctx, "r", &cache.Head{Repo: "r", Serial: 1, Time: now, Files: []cache.File{file("1/snapshot.xml", s1, size, time.Time{})}}); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Fills != fills || st.ColdBytes != size || st.PinnedBytes != size {
		t.Errorf("after the head: %d fills, cold %d, pinned %d bytes; want %d, %d, %d", st.Fills-fills, st.ColdBytes, st.PinnedBytes, 0, size, size)
	}
	if n, err := c.Warm(ctx, "r"); n != size || err != nil {
		t.Fatalf("Warm: %d, %v; want %d, nil", n, err, size)
	}
	if st := c.Stats(); st.ColdBytes != 0 || st.PinnedBytes != size || st.Fills != fills+1 {
		t.Errorf("after Warm: cold %d, pinned %d bytes, %d fills; want 0, %d, 1", st.ColdBytes, st.PinnedBytes, st.Fills-fills, size)
	}
	hits := c.Stats().Hits
	if got, err := c.Blob(ctx, s1); err != nil || !bytes.Equal(got, b1) {
		t.Fatalf("Blob after Warm: %v", err)
	}
	if st := c.Stats(); st.Hits != hits+1 {
		t.Error("a warmed blob was not served from memory")
	}

	// A cold pin swept before its head: the head still switches, and the
	// blob is read when asked.
	b2, s2 := blob(r, size)
	if ok, err := c.PutCold(ctx, s2, b2); !ok || err != nil {
		t.Fatalf("PutCold: %v, %v", ok, err)
	}
	now = now.Add(2 * time.Minute)
	c.Sweep()
	if st := c.Stats(); st.PendingBytes != 0 || st.ColdBytes != 0 {
		t.Errorf("after the sweep: pending %d, cold %d bytes; want 0, 0", st.PendingBytes, st.ColdBytes)
	}
	if err := c.PutHead(ctx, "r", &cache.Head{Repo: "r", Serial: 2, Time: now, Files: []cache.File{file("2/snapshot.xml", s2, size, time.Time{})}}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Blob(ctx, s2); err != nil || !bytes.Equal(got, b2) {
		t.Fatalf("Blob of a swept cold blob: %v", err)
	}
	if st := c.Stats(); st.PinnedBytes != size || st.ColdBytes != 0 {
		t.Errorf("serial 2: pinned %d, cold %d bytes; want %d, 0", st.PinnedBytes, st.ColdBytes, size)
	}
	// Serial 1's blob, no longer named, left memory (the disk has it:
	// nothing is moved to the evictable part unasked), and reads from the
	// disk into the evictable part.
	if st := c.Stats(); st.CachedBytes != 0 {
		t.Errorf("after serial 2: %d bytes in the evictable part, want 0", st.CachedBytes)
	}
	fills = c.Stats().Fills
	if got, err := c.Blob(ctx, s1); err != nil || !bytes.Equal(got, b1) {
		t.Fatalf("Blob of an unpinned blob: %v", err)
	}
	if st := c.Stats(); st.Fills != fills+1 || st.CachedBytes != size {
		t.Errorf("Blob of an unpinned blob: %d fills, %d bytes cached; want 1, %d", st.Fills-fills, st.CachedBytes, size)
	}

	// Without a durable tier PutCold declines, keeping nothing: a head
	// naming the blob is then refused.
	mem := newCache(t, cache.Config{})
	if mem.Cold() {
		t.Error("Cold: true without a durable tier")
	}
	if ok, err := mem.PutCold(ctx, s1, b1); ok || err != nil {
		t.Errorf("PutCold without a durable tier: %v, %v; want false, nil", ok, err)
	}
	if err := mem.PutHead(ctx, "r", &cache.Head{Repo: "r", Serial: 1, Time: now, Files: []cache.File{file("1/snapshot.xml", s1, size, time.Time{})}}); err == nil {
		t.Error("PutHead naming a blob PutCold declined: no error")
	}
}
