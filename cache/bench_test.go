package cache_test

import (
	"context"
	"fmt"
	"github.com/irpki/rrdp-proxy/cache"
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	disk := newDisk(b, b.TempDir())
	c := newCache(b, cache.Config{Tiers: []cache.Tier{disk}})
	r := rand.New(rand.NewPCG(8, 8))
	pb, pinned := blob(r, 64<<10)
	if err := c.PutBlob(ctx, pinned, pb); err != nil {
		b.Fatal(err)
	}
	if err := c.PutHead(ctx, "r", &cache.Head{Files: []cache.File{file("p", pinned, len(pb), time.Time{})}}); err != nil {
		b.Fatal(err)
	}
	cb, cached := blob(r, 64<<10)
	if err := disk.PutBlob(ctx, cached, cb); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Blob(ctx, cached); err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		sum  [32]byte
	}{{"pinned", pinned}, {"cached", cached}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Blob(ctx, bb.sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if st := c.Stats(); st.Fills != 1 {
		b.Errorf("fills: got %d, want 1 (every Blob in the loop a hit)", st.Fills)
	}
}

// BenchmarkLoad measures a warm start: a new cache reading 200 MiB of blobs
// (10 repositories, 20 blobs of 1 MiB each) from the disk tier, checking
// every sum. The file system cache is warm.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	disk := newDisk(b, dir)
	r := rand.New(rand.NewPCG(9, 9))
	const repos, perRepo, size = 10, 20, 1 << 20
	for i := range repos {
		h := &cache.Head{Repo: fmt.Sprint(i), Time: time.Now()}
		for j := range perRepo {
			bl, sum := blob(r, size)
			if err := disk.PutBlob(ctx, sum, bl); err != nil {
				b.Fatal(err)
			}
			h.Files = append(h.Files, file(fmt.Sprint(j), sum, size, time.Time{}))
		}
		if err := disk.PutHead(ctx, h.Repo, h); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(repos * perRepo * size)
	b.ReportAllocs()
	for b.Loop() {
		c, err := cache.New(cache.Config{Tiers: []cache.Tier{newDisk(b, dir)}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Load(ctx); err != nil {
			b.Fatal(err)
		}
		if st := c.Stats(); st.PinnedBytes != repos*perRepo*size {
			b.Fatalf("pinned after Load: got %d bytes, want %d", st.PinnedBytes, repos*perRepo*size)
		}
		c.Close()
	}
}
