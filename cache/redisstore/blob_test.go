package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// content returns n deterministic pseudo-random bytes.
func content(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func TestBlobRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{ChunkSize: 1 << 20})
	rc := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name   string
		size   int
		chunks int
	}{
		{"empty", 0, 0},
		{"small", 100, 1},
		{"one chunk", 1 << 20, 1},
		{"one byte more", 1<<20 + 1, 2},
		{"20 MB", 20_000_000, 20},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := content(tt.size, uint64(i))
			sum := sha256.Sum256(b)
			for range 2 { // the second put finds it present
				if err := st.PutBlob(ctx, sum, b); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.GetBlob(ctx, sum)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("got %d bytes, want the %d put", len(got), len(b))
			}
			keys, err := rc.Keys(ctx, st.metaKey(sum)+":*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tt.chunks {
				t.Errorf("got %d chunk keys, want %d", len(keys), tt.chunks)
			}
		})
	}
}

func TestBlobErrors(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{ChunkSize: 1 << 20})
	rc := srv.Client()
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(t *testing.T, sum [32]byte)
		want   error
	}{
		{"byte changed", func(t *testing.T, sum [32]byte) {
			if err := rc.SetRange(ctx, st.chunkKey(sum, 1), 1000, "X").Err(); err != nil {
				t.Fatal(err)
			}
		}, cache.ErrSum},
		{"chunk truncated", func(t *testing.T, sum [32]byte) {
			if err := rc.Set(ctx, st.chunkKey(sum, 2), "short", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, cache.ErrSum},
		{"chunk grown", func(t *testing.T, sum [32]byte) {
			if err := rc.Append(ctx, st.chunkKey(sum, 0), "more").Err(); err != nil {
				t.Fatal(err)
			}
		}, cache.ErrSum},
		{"chunk missing", func(t *testing.T, sum [32]byte) {
			if err := rc.Del(ctx, st.chunkKey(sum, 1)).Err(); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist},
		{"meta missing", func(t *testing.T, sum [32]byte) {
			if err := rc.Del(ctx, st.metaKey(sum)).Err(); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrNotExist},
		{"meta malformed", func(t *testing.T, sum [32]byte) {
			if err := rc.Set(ctx, st.metaKey(sum), "12", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}, errMeta},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := content(3<<20+5, uint64(100+i))
			sum := sha256.Sum256(b)
			if err := st.PutBlob(ctx, sum, b); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, sum)
			got, err := st.GetBlob(ctx, sum)
			if err == nil || got != nil {
				t.Fatalf("got %d bytes, err %v; want no bytes and an error", len(got), err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want one wrapping %v", err, tt.want)
			}
			// Damage makes it read as missing, and a new put repairs it.
			if _, err := st.GetBlob(ctx, sum); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("get blob again: got %v, want fs.ErrNotExist", err)
			}
			if err := st.PutBlob(ctx, sum, b); err != nil {
				t.Fatal(err)
			}
			got, err = st.GetBlob(ctx, sum)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("after a new put: got %d bytes, err %v; want the %d put", len(got), err, len(b))
			}
		})
	}
	t.Run("absent", func(t *testing.T) {
		_, err := st.GetBlob(ctx, sha256.Sum256([]byte("never put")))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("got %v, want an error wrapping fs.ErrNotExist", err)
		}
	})
	t.Run("put with wrong sum", func(t *testing.T) {
		err := st.PutBlob(ctx, sha256.Sum256([]byte("a")), []byte("b"))
		if !errors.Is(err, cache.ErrSum) {
			t.Fatalf("got %v, want an error wrapping cache.ErrSum", err)
		}
	})
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"url", Config{URL: "redis://user:pw@127.0.0.1:1/2", Password: "other"}, true},
		{"bad url", Config{URL: "http://x"}, false},
		{"negative chunk", Config{ChunkSize: -1}, false},
		{"huge chunk", Config{ChunkSize: 1 << 30}, false},
		{"negative timeout", Config{ReadTimeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok %v", err, tt.ok)
			}
			if st != nil {
				st.Close()
			}
		})
	}
}
