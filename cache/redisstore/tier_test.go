package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

var (
	_ cache.Tier   = (*Store)(nil)
	_ follow.Store = (*Store)(nil)
)

// TestCacheFill publishes through one node's cache into Redis, and a
// second node's cache on the same Redis loads the head and fills the blob.
func TestCacheFill(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	newCache := func() *cache.Cache {
		c, err := cache.New(cache.Config{Tiers: []cache.Tier{newStore(t, srv, Config{ChunkSize: 1 << 10})}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	const repo = "https://rrdp.example.net/notification.xml"
	blob := content(10_000, 7)
	h := testHead(repo, 3, nil, blob)
	a := newCache()
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	if err := a.PutHead(ctx, repo, h); err != nil {
		t.Fatal(err)
	}
	b := newCache()
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Head(repo); got == nil || got.Serial != h.Serial {
		t.Fatalf("second node's head: got %+v, want serial %d", got, h.Serial)
	}
	got, err := b.Blob(ctx, sha256.Sum256(blob))
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("second node's blob: got %d bytes, %v; want the %d put", len(got), err, len(blob))
	}
}
