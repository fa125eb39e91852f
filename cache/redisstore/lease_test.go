package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

func TestLease(t *testing.T) {
	srv := redistest.Start(t)
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
	if err := a.PutHeadFenced(ctx, la, testHead(repo, 1, nil, blob)); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("fenced put head with node-a's stale token: got %v, want ErrNotHeld", err)
	}
	if err := b.PutHeadFenced(ctx, lb, testHead(repo, 2, nil, blob)); err != nil {
		t.Fatalf("fenced put head by the holder: %v", err)
	}
	h, err := a.Head(ctx, repo)
	if err != nil || h == nil || h.Serial != 2 {
		t.Fatalf("got head %+v, %v; want serial 2", h, err)
	}
}

func TestLeaseExpiry(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	rc := srv.Client()
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
	if err := a.PutHeadFenced(ctx, la, testHead(repo, 1, nil, blob)); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("fenced put head after expiry: got %v, want ErrNotHeld", err)
	}
	if h, err := b.Head(ctx, repo); err != nil || h != nil {
		t.Fatalf("got head %+v, %v; want none", h, err)
	}
}

// TestFleet counts nodes alive and the leases they hold, and forgets a
// node once its heartbeat ran out.
func TestFleet(t *testing.T) {
	srv := redistest.Start(t)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	st := newStore(t, srv, Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	for _, n := range []string{"node-a", "node-b"} {
		if err := st.Beat(ctx, n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	const repo = "https://rrdp.example.net/notification.xml"
	if _, ok, err := st.Acquire(ctx, repo, "node-c", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	b := []byte("snapshot")
	if err := st.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
		t.Fatal(err)
	}
	if err := st.PutHead(ctx, repo, testHead(repo, 1, []byte("expired"), b)); err != nil {
		t.Fatal(err)
	}
	got, err := st.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"node-a": 0, "node-b": 0, "node-c": 1}; !maps.Equal(got, want) {
		t.Errorf("fleet: got %v, want %v", got, want)
	}
	if h, err := st.Holder(ctx, repo); err != nil || h != "node-c" {
		t.Errorf("holder: got %q, %v; want node-c", h, err)
	}
	clock.Add(int64(2 * time.Minute))
	if err := st.Beat(ctx, "node-b", time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err = st.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"node-b": 0, "node-c": 1}; !maps.Equal(got, want) {
		t.Errorf("fleet two minutes later: got %v, want %v", got, want)
	}
}
