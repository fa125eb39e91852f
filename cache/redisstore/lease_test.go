package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

func TestLease(t *testing.T) {
	srv := startServer(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	ctx := context.Background()
	const repo = "https://rrdp.example.net/notification.xml"
	const ttl = time.Minute

	la, ok, err := a.Acquire(ctx, repo, "node-a", ttl)
	if err != nil || !ok {
		t.Fatalf("node-a acquire: got %v, %v; want the lease", ok, err)
	}
	if _, ok, err := b.Acquire(ctx, repo, "node-b", ttl); err != nil || ok {
		t.Fatalf("node-b acquire while node-a holds: got %v, %v; want false, nil", ok, err)
	}
	again, ok, err := a.Acquire(ctx, repo, "node-a", ttl)
	if err != nil || !ok || again != la {
		t.Fatalf("node-a acquire again: got %+v, %v, %v; want %+v", again, ok, err, la)
	}
	forged := la
	forged.Node = "node-b"
	if err := b.Renew(ctx, forged, ttl); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("renew by node-b: got %v, want ErrNotHeld", err)
	}
	if err := b.Release(ctx, forged); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("release by node-b: got %v, want ErrNotHeld", err)
	}
	if err := a.Renew(ctx, la, ttl); err != nil {
		t.Fatalf("renew by node-a: %v", err)
	}
	if err := a.Release(ctx, la); err != nil {
		t.Fatalf("release by node-a: %v", err)
	}
	if err := a.Renew(ctx, la, ttl); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("renew after release: got %v, want ErrNotHeld", err)
	}
	lb, ok, err := b.Acquire(ctx, repo, "node-b", ttl)
	if err != nil || !ok {
		t.Fatalf("node-b acquire after release: got %v, %v; want the lease", ok, err)
	}
	if lb.Token <= la.Token {
		t.Fatalf("got token %d for node-b, want more than node-a's %d", lb.Token, la.Token)
	}
	other, ok, err := a.Acquire(ctx, "https://other.example/notification.xml", "node-a", ttl)
	if err != nil || !ok {
		t.Fatalf("node-a acquire of another repository: got %+v, %v, %v", other, ok, err)
	}

	blob := []byte("snapshot")
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	if err := a.PutHeadFenced(ctx, repo, testHead(repo, 1, nil, blob), la.Token); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("fenced put head with node-a's stale token: got %v, want ErrNotHeld", err)
	}
	if err := b.PutHeadFenced(ctx, repo, testHead(repo, 2, nil, blob), lb.Token); err != nil {
		t.Fatalf("fenced put head by the holder: %v", err)
	}
	h, err := a.Head(ctx, repo)
	if err != nil || h == nil || h.Serial != 2 {
		t.Fatalf("got head %+v, %v; want serial 2", h, err)
	}
}

func TestLeaseExpiry(t *testing.T) {
	srv := startServer(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	rc := srv.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const repo = "https://rrdp.example.net/notification.xml"

	la, ok, err := a.Acquire(ctx, repo, "node-a", 50*time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("node-a acquire: got %v, %v", ok, err)
	}
	if _, ok, err := b.Acquire(ctx, repo, "node-b", time.Minute); err != nil || ok {
		t.Fatalf("node-b acquire before expiry: got %v, %v; want false, nil", ok, err)
	}
	// Wait for Redis to expire the lease: PTTL is -2 once the key is gone.
	for {
		d, err := rc.PTTL(ctx, a.leaseKey(repo)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d == -2 { // go-redis passes -2 and -1 through unscaled
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("lease did not expire: PTTL %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	lb, ok, err := b.Acquire(ctx, repo, "node-b", time.Minute)
	if err != nil || !ok {
		t.Fatalf("node-b acquire after expiry: got %v, %v", ok, err)
	}
	if lb.Token <= la.Token {
		t.Fatalf("got token %d for node-b, want more than node-a's %d", lb.Token, la.Token)
	}
	if err := a.Renew(ctx, la, time.Minute); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("renew of the expired lease: got %v, want ErrNotHeld", err)
	}
	blob := []byte("snapshot")
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	if err := a.PutHeadFenced(ctx, repo, testHead(repo, 1, nil, blob), la.Token); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("fenced put head after expiry: got %v, want ErrNotHeld", err)
	}
	if h, err := b.Head(ctx, repo); err != nil || h != nil {
		t.Fatalf("got head %+v, %v; want none", h, err)
	}
}
