package fleet

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// compactHead returns a compact head of key at serial, with one snapshot
// file whose blob it puts into c.
func compactHead(t *testing.T, c *cache.Cache, key string, serial uint64) *follow.Head {
	t.Helper()
	data := []byte("compact snapshot " + time.Now().String())
	sum := sha256.Sum256(data)
	if err := c.PutBlob(context.Background(), sum, data); err != nil {
		t.Fatal(err)
	}
	return &follow.Head{Repo: key, Session: "7d0e6f4a-1b2c-4d3e-8f90-a1b2c3d4e5f6", Serial: serial, Origin: irpki.FormatBin,
		Time: time.Now().UTC(), NotificationBin: append([]byte("notification "), byte('0'+serial)),
		Files: []follow.File{{Path: "compact/7d0e6f4a-1b2c-4d3e-8f90-a1b2c3d4e5f6/" + string(rune('0'+serial)) + "/00/snapshot.bin",
			Sum: sum, Size: int64(len(data)), Format: irpki.FormatBin, Kind: rrdpxml.KindSnapshot, Serial: serial}}}
}

// TestCompactFenced checks the fleet's rules for a repository's compact
// publication (Config.Compact): only the lease holder publishes it
// (Publishes), a head the other node's cache is given is refused rather
// than kept local and never reaches Redis, the holder's reaches Redis and
// the other node installs it, and a deposed holder's is refused by the
// fence.
func TestCompactFenced(t *testing.T) {
	e := newEnv(t)
	e.prepare = func(name string, cfg *Config) func(*Node) func(context.Context) {
		cfg.Compact = []string{e.url}
		return nil
	}
	a := e.start("node-a")
	e.waitSerial(e.repo.Info().Serial)
	b := e.start("node-b")
	e.waitSerial(e.repo.Info().Serial)
	holder := e.oneHolder()
	other := a
	if holder == a {
		other = b
	}
	key := cache.CompactKey(e.url)
	e.waitFor("the holder publishes", func() bool { return holder.Publishes(e.url) })
	if other.Publishes(e.url) {
		t.Fatalf("%s publishes the compact form without the lease", other.Name())
	}
	ctx := context.Background()

	h0 := compactHead(t, other.Cache(), key, 1)
	if err := other.Cache().PutHead(ctx, key, h0); !errors.Is(err, redisstore.ErrNotHeld) {
		t.Fatalf("%s: compact head without the lease: got %v, want ErrNotHeld", other.Name(), err)
	}
	if got, err := holder.rs.Head(ctx, key); err != nil || got != nil {
		t.Fatalf("redis after a refused compact head: got %v, %v, want none", got, err)
	}
	if other.Cache().Head(key) != nil {
		t.Fatalf("%s serves a compact head it could not publish", other.Name())
	}

	h1 := compactHead(t, holder.Cache(), key, 1)
	if err := holder.Cache().PutHead(ctx, key, h1); err != nil {
		t.Fatalf("%s: compact head with the lease: %v", holder.Name(), err)
	}
	e.waitFor(other.Name()+" installs the holder's compact head", func() bool {
		return cache.SameCompact(other.Cache().Head(key), h1)
	})
	if st := other.repoStats(); st.CompactInstalled == 0 {
		t.Errorf("%s: CompactInstalled %d after installing", other.Name(), st.CompactInstalled)
	}

	// The holder is deposed without noticing: its next compact head is
	// refused by the fence, and Redis keeps serial 1.
	l, held := holder.tier.lease(e.url)
	if !held {
		t.Fatal("the holder holds no lease")
	}
	if err := holder.rs.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	h2 := compactHead(t, holder.Cache(), key, 2)
	if err := holder.Cache().PutHead(ctx, key, h2); !errors.Is(err, redisstore.ErrNotHeld) {
		t.Fatalf("deposed holder: got %v, want ErrNotHeld", err)
	}
	got, err := holder.rs.Head(ctx, key)
	if err != nil || !cache.SameCompact(got, h1) {
		t.Fatalf("redis after the fenced write: got %+v, %v, want serial 1", got, err)
	}
}
