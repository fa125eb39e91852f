package cache_test

import (
	"context"
	"github.com/irpki/rrdp-proxy/cache"
	"os"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestFollower runs a real follower against a synthetic repository served
// over https on the loopback interface, publishing into a Cache backed by a
// disk tier; then a new Cache on the same directory serves the same state
// without the origin.
func TestFollower(t *testing.T) {
	ctx := context.Background()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	repoDir := t.TempDir()
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: repoDir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(repoDir, repotest.Config{
		Profile: repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, Seed: 1, BaseURL: o.URL()}, now, repotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	stateDir := t.TempDir()
	c := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, stateDir)}})
	url := o.URL() + "rrdp/notification.xml"
	f, err := follow.New(follow.Config{URL: url, Client: client, Store: c, Base: "https://edge.example.net/rrdp/"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, c *cache.Cache, want *cache.Head) {
		t.Helper()
		got := c.Head(url)
		if got == nil || got.Session != want.Session || got.Serial != want.Serial || len(got.Files) != len(want.Files) ||
			string(got.NotificationBin) != string(want.NotificationBin) {
			t.Fatalf("head: got %+v, want serial %d with %d files", got, want.Serial, len(want.Files))
		}
		// The files the notifications name are pinned; the retained
		// ones live on disk and in the evictable part.
		misses := c.Stats().Misses
		for _, file := range got.Files {
			if !file.Expires.IsZero() {
				continue
			}
			b, err := c.Blob(ctx, file.Sum)
			if err != nil || int64(len(b)) != file.Size {
				t.Errorf("%s: got %d bytes, %v; want %d", file.Path, len(b), err, file.Size)
			}
		}
		if m := c.Stats().Misses - misses; m != 0 {
			t.Errorf("misses serving the files the notifications name: got %d, want 0 (all pinned)", m)
		}
		for _, file := range got.Files {
			if b, err := c.Blob(ctx, file.Sum); err != nil || int64(len(b)) != file.Size {
				t.Errorf("%s: got %d bytes, %v; want %d", file.Path, len(b), err, file.Size)
			}
		}
	}
	var heads []*cache.Head
	for step := range 3 {
		if step > 0 {
			now = now.Add(time.Minute)
			if err := repo.Advance(now, 1); err != nil {
				t.Fatal(err)
			}
		}
		if changed, err := f.Sync(ctx); err != nil || !changed {
			t.Fatalf("sync %d: changed=%v, %v", step, changed, err)
		}
		heads = append(heads, f.Head())
		check(t, c, f.Head())
	}
	last := heads[len(heads)-1]
	if len(last.Files) <= 4 {
		t.Errorf("files of serial %d: got %d, want snapshots and deltas of both formats, and retained ones", last.Serial, len(last.Files))
	}

	t.Logf("serial %d: %d files, %+v", last.Serial, len(last.Files), c.Stats())
	o.Close() // the origin is gone; a restart serves from disk
	c2 := newCache(t, cache.Config{Tiers: []cache.Tier{newDisk(t, stateDir)}})
	if err := c2.Load(ctx); err != nil {
		t.Fatalf("Load: %v", err)
	}
	check(t, c2, last)
}
