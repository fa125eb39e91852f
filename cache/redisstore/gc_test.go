package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestGC puts blobs, names some in a head, and collects the others once
// their grace has passed, chunks and all.
func TestGC(t *testing.T) {
	srv := redistest.Start(t)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	tick := func(d time.Duration) { clock.Add(int64(d)) }
	st := newStore(t, srv, Config{ChunkSize: 1 << 10, Grace: time.Hour,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	rc := srv.Client()
	ctx := context.Background()
	const repo = "https://rrdp.example.net/notification.xml"

	expired := content(3000, 1) // named, but its retention ended
	live := content(5000, 2)    // named by the head
	orphan := content(4500, 3)  // named by nothing, 5 chunks
	damaged := content(2500, 4) // named by nothing, meta removed by a reader
	recent := content(100, 5)   // named by nothing, put within the grace
	for _, b := range [][]byte{expired, live, orphan, damaged} {
		if err := st.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
			t.Fatal(err)
		}
	}
	h := testHead(repo, 1, expired, live) // the first file expired at now-1m
	if err := st.PutHead(ctx, repo, h); err != nil {
		t.Fatal(err)
	}
	if err := rc.Del(ctx, st.metaKey(sha256.Sum256(damaged))).Err(); err != nil {
		t.Fatal(err)
	}

	if got, err := st.GC(ctx); err != nil || got != (GCStats{}) {
		t.Fatalf("gc within the grace: got %+v, %v; want nothing done", got, err)
	}
	tick(time.Hour + time.Minute)
	if err := st.PutBlob(ctx, sha256.Sum256(recent), recent); err != nil {
		t.Fatal(err)
	}
	got, err := st.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The damaged blob's size is unknown without its meta.
	want := GCStats{Kept: 1, Removed: 3, RemovedBytes: int64(len(expired) + len(orphan))}
	if got != want {
		t.Errorf("gc: got %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		name string
		b    []byte
		kept bool
	}{{"expired", expired, false}, {"live", live, true}, {"orphan", orphan, false}, {"damaged", damaged, false}, {"recent", recent, true}} {
		sum := sha256.Sum256(tt.b)
		keys, err := rc.Keys(ctx, st.metaKey(sum)+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if tt.kept != (len(keys) > 0) {
			t.Errorf("%s: got keys %v, want kept %v", tt.name, keys, tt.kept)
		}
		inSet := rc.ZScore(ctx, st.blobsKey(), hex.EncodeToString(sum[:])).Err() == nil
		if inSet != tt.kept {
			t.Errorf("%s: in the blobs set %v, want %v", tt.name, inSet, tt.kept)
		}
	}
	if b, err := st.GetBlob(ctx, sha256.Sum256(live)); err != nil || !bytes.Equal(b, live) {
		t.Fatalf("live blob after gc: got %d bytes, %v", len(b), err)
	}

	// A head keeps its blobs for as long as it names them: its PutHead
	// refreshed their time, and GC compares with the head itself.
	tick(10 * time.Hour)
	if got, err := st.GC(ctx); err != nil || got.Removed != 1 || got.Kept != 1 {
		t.Fatalf("gc ten hours later: got %+v, %v; want the recent blob removed and the live one kept", got, err)
	}
	// A head naming a collected blob is refused.
	h2 := testHead(repo, 2, expired, live, orphan)
	if err := st.PutHead(ctx, repo, h2); err == nil {
		t.Fatal("put head naming a collected blob: got no error")
	}
	missing, err := st.Missing(ctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][32]byte{sha256.Sum256(orphan)}; !slices.Equal(missing, want) {
		t.Fatalf("missing: got %x, want %x", missing, want)
	}
	if _, err := st.GetBlob(ctx, sha256.Sum256(orphan)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("collected blob: got %v, want fs.ErrNotExist", err)
	}
}

// TestGCKeepsPutAgain: a blob put again, present already, gets a new time
// and survives a GC that would otherwise take it.
func TestGCKeepsPutAgain(t *testing.T) {
	srv := redistest.Start(t)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	st := newStore(t, srv, Config{Grace: time.Minute, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	b := content(100, 9)
	sum := sha256.Sum256(b)
	if err := st.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	clock.Add(int64(2 * time.Minute))
	if err := st.PutBlob(ctx, sum, b); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GC(ctx); err != nil || got.Removed != 0 {
		t.Fatalf("gc: got %+v, %v; want nothing removed", got, err)
	}
	if _, err := st.GetBlob(ctx, sum); err != nil {
		t.Fatal(err)
	}
}

// TestGCHeads: what GC does when a head is damaged or gone. A head that
// cannot be decoded is skipped and counted, and the rest collected; while
// a repository of the set has no head (evicted), GC removes nothing, so
// that its current blobs survive until its holder writes the head again.
func TestGCHeads(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name string
		// damage acts on the head of repository "r", which names live.
		damage      func(s *Store) error
		wantErr     error
		wantLive    bool // the blob r's head names survives
		wantGarbage bool // the blob no head names survives
		wantBad     int
	}{
		{"head evicted", func(s *Store) error { return rc.Del(ctx, s.headKey("r")).Err() }, ErrHeadless, true, true, 0},
		{"head undecodable", func(s *Store) error {
			return rc.Set(ctx, s.headKey("r"), `{"repo":"r","head":{"Serial":"x"}}`, 0).Err()
		}, nil, false, false, 1},
		{"head names another repository", func(s *Store) error {
			return rc.Set(ctx, s.headKey("r"), `{"repo":"q","head":{}}`, 0).Err()
		}, nil, false, false, 1},
		{"head deleted", func(s *Store) error { return s.DeleteHead(ctx, "r") }, nil, false, false, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := now
			s := newStore(t, srv, Config{Prefix: fmt.Sprintf("gcheads%d:", i), Grace: time.Hour,
				Now: func() time.Time { return clock }})
			live, garbage := []byte("live of "+tt.name), []byte("garbage of "+tt.name)
			for _, b := range [][]byte{live, garbage} {
				if err := s.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
					t.Fatal(err)
				}
			}
			other := []byte("other's of " + tt.name)
			if err := s.PutBlob(ctx, sha256.Sum256(other), other); err != nil {
				t.Fatal(err)
			}
			if err := s.PutHead(ctx, "r", testHead("r", 1, nil, live)); err != nil {
				t.Fatal(err)
			}
			oh := testHead("o", 1, nil, other)
			if err := s.PutHead(ctx, "o", oh); err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(s); err != nil {
				t.Fatal(err)
			}
			clock = clock.Add(2 * time.Hour)
			st, err := s.GC(ctx)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("gc: got %v, want %v", err, tt.wantErr)
			}
			if st.BadHeads != tt.wantBad || s.BadHeads() != uint64(tt.wantBad) {
				t.Errorf("bad heads: got %d in the stats, %d counted; want %d", st.BadHeads, s.BadHeads(), tt.wantBad)
			}
			for _, c := range []struct {
				what string
				b    []byte
				want bool
			}{{"live", live, tt.wantLive}, {"garbage", garbage, tt.wantGarbage}, {"other repository's", other, true}} {
				_, err := s.GetBlob(ctx, sha256.Sum256(c.b))
				if got := err == nil; got != c.want {
					t.Errorf("%s blob kept: got %v (%v), want %v", c.what, got, err, c.want)
				}
			}
			heads, err := s.Heads(ctx)
			if err != nil || heads["o"] == nil {
				t.Errorf("heads after damage to r: got %v, %v; want o's", heads, err)
			}
		})
	}
}
