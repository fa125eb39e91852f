package redisstore

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// BenchmarkGetBlob fills a 200 MB snapshot from Redis, hash check included.
func BenchmarkGetBlob(b *testing.B) {
	srv := redistest.Start(b)
	st := newStore(b, srv, Config{})
	ctx := context.Background()
	blob := content(200_000_000, 1)
	sum := sha256.Sum256(blob)
	if err := st.PutBlob(ctx, sum, blob); err != nil {
		b.Fatal(err)
	}
	blob = nil
	b.SetBytes(200_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.GetBlob(ctx, sum); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheFill fills a 200 MB snapshot into an empty cache.Cache
// from Redis, as a node that installs a head does: one hash check, the
// store's (the cache does not check a ChecksSums tier again).
func BenchmarkCacheFill(b *testing.B) {
	srv := redistest.Start(b)
	st := newStore(b, srv, Config{})
	ctx := context.Background()
	blob := content(200_000_000, 2)
	sum := sha256.Sum256(blob)
	if err := st.PutBlob(ctx, sum, blob); err != nil {
		b.Fatal(err)
	}
	blob = nil
	b.SetBytes(200_000_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c, err := cache.New(cache.Config{MaxBytes: 1 << 30, Tiers: []cache.Tier{st}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Blob(ctx, sum); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if s := c.Stats(); s.Fills != 1 {
			b.Fatalf("fills: got %d, want 1", s.Fills)
		}
		c.Close()
		b.StartTimer()
	}
}
