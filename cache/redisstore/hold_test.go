package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestHold: Hold holds blobs whose every chunk is present and keeps them
// from GC for the grace from then on; a blob missing a chunk or its meta
// fails the hold, without refreshing the others.
func TestHold(t *testing.T) {
	srv := redistest.Start(t)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	tick := func(d time.Duration) { clock.Add(int64(d)) }
	st := newStore(t, srv, Config{ChunkSize: 1 << 10, Grace: time.Hour,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	rc := srv.Client()
	ctx := context.Background()
	held, chunkless, metaless := content(3000, 1), content(4000, 2), content(500, 3)
	var sums [][32]byte
	for _, b := range [][]byte{held, chunkless, metaless} {
		sum := sha256.Sum256(b)
		sums = append(sums, sum)
		if err := st.PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Del(ctx, st.chunkKey(sums[1], 2)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Del(ctx, st.metaKey(sums[2])).Err(); err != nil {
		t.Fatal(err)
	}
	tick(50 * time.Minute)
	key := [32]byte{1}
	for _, tt := range []struct {
		name string
		sums [][32]byte
	}{{"a chunk missing", sums[:2]}, {"the meta missing", [][32]byte{sums[0], sums[2]}}} {
		if _, err := st.Hold(ctx, key, tt.sums); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Hold, %s: got %v, want fs.ErrNotExist", tt.name, err)
		}
	}
	release, err := st.Hold(ctx, key, sums[:1])
	if err != nil {
		t.Fatalf("Hold of a whole blob: %v", err)
	}
	release()
	// An hour after the put, 20 minutes after the hold: GC removes the
	// damaged blobs, which no hold refreshed, and keeps the held one.
	tick(20 * time.Minute)
	if _, err := st.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetBlob(ctx, sums[0]); err != nil {
		t.Errorf("the held blob after GC: %v, want kept", err)
	}
	if n, err := rc.Exists(ctx, st.chunkKey(sums[1], 0)).Result(); err != nil || n != 0 {
		t.Errorf("the blob missing a chunk after GC: chunk 0 exists %d (%v), want removed", n, err)
	}
	// The grace counts from the hold.
	tick(time.Hour)
	if _, err := st.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetBlob(ctx, sums[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the held blob a grace after its hold: %v, want removed", err)
	}
}
