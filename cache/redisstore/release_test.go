package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestReleaseRequest: a request made on one node is announced to and
// read by another; taking it succeeds once, and not after a newer request
// replaced it; an oversized one is refused; the TTL holds in Redis.
func TestReleaseRequest(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := b.ReleaseRequest(ctx, "ripe"); err != nil || got != nil {
		t.Fatalf("ReleaseRequest before any: got %q, %v; want none", got, err)
	}
	ch, err := b.SubscribeReleases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RequestRelease(ctx, "ripe", []byte(`{"serial":2}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case repo := <-ch:
		if repo != "ripe" {
			t.Errorf("announced %q, want ripe", repo)
		}
	case <-ctx.Done():
		t.Fatal("no announcement of the release request")
	}
	got, err := b.ReleaseRequest(ctx, "ripe")
	if err != nil || string(got) != `{"serial":2}` {
		t.Fatalf("ReleaseRequest: got %q, %v", got, err)
	}
	if ttl, err := a.rdb.TTL(ctx, a.releaseKey("ripe")).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of the request: got %v, %v; want within a minute", ttl, err)
	}
	// A newer request replaces it: taking the old one leaves the new.
	if err := a.RequestRelease(ctx, "ripe", []byte(`{"serial":3}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if took, err := b.TakeReleaseRequest(ctx, "ripe", got); err != nil || took {
		t.Errorf("take a replaced request: got %v, %v; want false", took, err)
	}
	got, err = b.ReleaseRequest(ctx, "ripe")
	if err != nil || string(got) != `{"serial":3}` {
		t.Fatalf("ReleaseRequest after the replacement: got %q, %v", got, err)
	}
	for i, want := range []bool{true, false} {
		if took, err := b.TakeReleaseRequest(ctx, "ripe", got); err != nil || took != want {
			t.Errorf("take %d: got %v, %v; want %v", i+1, took, err, want)
		}
	}
	if got, err := a.ReleaseRequest(ctx, "ripe"); err != nil || got != nil {
		t.Errorf("ReleaseRequest after the take: got %q, %v; want none", got, err)
	}
	if err := a.RequestRelease(ctx, "ripe", []byte(strings.Repeat("x", maxRelease+1)), time.Minute); err == nil {
		t.Error("RequestRelease accepted an oversized request")
	}
	select {
	case repo := <-heads:
		t.Errorf("a release request announced a head of %s", repo)
	default:
	}
}
