package redisstore

import (
	"context"
	"crypto/sha256"
	"testing"
)

// BenchmarkGetBlob fills a 200 MB snapshot from Redis, hash check included.
func BenchmarkGetBlob(b *testing.B) {
	srv := startServer(b)
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
