package fleet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
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

// desc describes a compact head in a message.
func desc(h *follow.Head) string {
	if h == nil {
		return "no head"
	}
	return fmt.Sprintf("serial %d of session %s (notification %q)", h.Serial, h.Session, h.NotificationBin)
}

// TestCompactFenced checks the fleet's rules for a repository's compact
// publication (Config.Compact): only the lease holder publishes it
// (Publishes), a head the other node's cache is given is refused rather
// than kept local and never reaches Redis, the holder's reaches Redis and
// the other node installs it, and a deposed holder's is refused by the
// fence.
func TestCompactFenced(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	disks := map[string]cache.Tier{} // each node's state directory
	e.prepare = func(name string, cfg *Config) func(*Node) func(context.Context) {
		cfg.Compact = []string{e.url}
		mu.Lock()
		disks[name] = cfg.Cache.Tiers[0]
		mu.Unlock()
		return nil
	}
	// onDisk returns the compact head in nd's state directory.
	onDisk := func(nd *node) *follow.Head {
		t.Helper()
		mu.Lock()
		d := disks[nd.Name()]
		mu.Unlock()
		heads, err := d.Heads(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return heads[cache.CompactKey(e.url)]
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
	if d := onDisk(other); d != nil {
		t.Fatalf("%s keeps compact serial %d in its state directory, which it could not publish (a restart would serve it)", other.Name(), d.Serial)
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

	// A serial 1 again, of other bytes (a validator run that began
	// before serial 1 was published): refused, it does not continue
	// Redis's head, and kept nowhere.
	again := compactHead(t, holder.Cache(), key, 1)
	again.NotificationBin = append(again.NotificationBin, " again"...)
	if err := holder.Cache().PutHead(ctx, key, again); !errors.Is(err, errNotNext) {
		t.Fatalf("a second compact serial 1: got %v, want errNotNext", err)
	}
	if got, err := holder.rs.Head(ctx, key); err != nil || !cache.SameCompact(got, h1) {
		t.Fatalf("redis after a second serial 1: got %s, %v; want the first", desc(got), err)
	}
	if !cache.SameCompact(holder.Cache().Head(key), h1) || !cache.SameCompact(onDisk(holder), h1) {
		t.Fatalf("%s after a second serial 1: serves %s, keeps %s on disk; want the first", holder.Name(), desc(holder.Cache().Head(key)), desc(onDisk(holder)))
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
		t.Fatalf("redis after the fenced write: got %s, %v, want serial 1", desc(got), err)
	}
	if d := onDisk(holder); !cache.SameCompact(d, h1) {
		t.Fatalf("%s keeps %s in its state directory after the fenced write, want serial 1", holder.Name(), desc(d))
	}
}
