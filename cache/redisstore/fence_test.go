package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestFenceSurvivesLostKeys: Redis loses the lease and fence keys
// (allkeys-lru eviction, a failover to a replica behind); the deposed
// holder must not write a head, and the next token stays above the one
// the stored head was written with.
func TestFenceSurvivesLostKeys(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	blob := []byte("snapshot")
	tests := []struct {
		name string
		// lose deletes keys between node-a's write and node-b's acquire.
		lose func(s *Store, repo string) []string
	}{
		{"lease and fence lost", func(s *Store, repo string) []string { return []string{s.leaseKey(repo), s.fenceKey(repo)} }},
		{"lease lost", func(s *Store, repo string) []string { return []string{s.leaseKey(repo)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newStore(t, srv, Config{})
			b := newStore(t, srv, Config{})
			repo := "r-" + tt.name
			if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
				t.Fatal(err)
			}
			la, ok, err := a.Acquire(ctx, repo, "node-a", time.Minute)
			if err != nil || !ok {
				t.Fatalf("node-a acquire: %v, %v", ok, err)
			}
			if err := a.PutHeadFenced(ctx, la, testHead(repo, 1, nil, blob)); err != nil {
				t.Fatalf("node-a put head: %v", err)
			}
			if err := rc.Del(ctx, tt.lose(a, repo)...).Err(); err != nil {
				t.Fatal(err)
			}
			lb, ok, err := b.Acquire(ctx, repo, "node-b", time.Minute)
			if err != nil || !ok {
				t.Fatalf("node-b acquire: %v, %v", ok, err)
			}
			if lb.Token <= la.Token {
				t.Errorf("node-b's token %d, want above %d, the token of the stored head", lb.Token, la.Token)
			}
			if err := b.PutHeadFenced(ctx, lb, testHead(repo, 2, nil, blob)); err != nil {
				t.Fatalf("node-b put head: %v", err)
			}
			if err := a.PutHeadFenced(ctx, la, testHead(repo, 3, nil, blob)); !errors.Is(err, ErrNotHeld) {
				t.Errorf("deposed node-a put head: got %v, want ErrNotHeld", err)
			}
			if h, err := b.Head(ctx, repo); err != nil || h.Serial != 2 {
				t.Errorf("head: got %+v, %v; want node-b's serial 2", h, err)
			}
		})
	}
}

// TestFenceSameTokenOtherHolder: with no head stored, a lost fence hands
// the same token out again; the whole lease value tells the holders apart.
func TestFenceSameTokenOtherHolder(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	rc := srv.Client()
	ctx := context.Background()
	const repo = "r"
	blob := []byte("snapshot")
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	la, ok, err := a.Acquire(ctx, repo, "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := rc.Del(ctx, a.leaseKey(repo), a.fenceKey(repo)).Err(); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := b.Acquire(ctx, repo, "node-b", time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if lb.Token != la.Token {
		t.Logf("tokens %d and %d differ; the check below still applies", la.Token, lb.Token)
	}
	if err := a.PutHeadFenced(ctx, la, testHead(repo, 1, nil, blob)); !errors.Is(err, ErrNotHeld) {
		t.Errorf("deposed node-a with token %d (node-b holds %d): got %v, want ErrNotHeld", la.Token, lb.Token, err)
	}
}

// TestLeaseInstances: two processes configured with the same node name are
// two holders; Holder and Fleet still report the node name.
func TestLeaseInstances(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	if a.instance == b.instance {
		t.Fatalf("two stores got one instance %q", a.instance)
	}
	if _, err := New(Config{URL: srv.URL(), Instance: "has space"}); err == nil {
		t.Errorf("instance with a space: got no error")
	}
	la, ok, err := a.Acquire(ctx, "r", "node", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first process: %v, %v", ok, err)
	}
	if _, ok, err := b.Acquire(ctx, "r", "node", time.Minute); err != nil || ok {
		t.Errorf("second process with the same node name: got %v, %v; want false, nil", ok, err)
	}
	again, ok, err := a.Acquire(ctx, "r", "node", time.Minute)
	if err != nil || !ok || again != la {
		t.Errorf("first process again: got %+v, %v, %v; want %+v", again, ok, err, la)
	}
	if h, err := b.Holder(ctx, "r"); err != nil || h != "node" {
		t.Errorf("holder: got %q, %v; want node", h, err)
	}
}

// TestFenceAfterEmptyRedis: Redis comes back empty (a restart without
// persistence, FLUSHALL); the nodes that live hand out tokens above every
// token they saw before: their own leases, the heads and holders they read.
func TestFenceAfterEmptyRedis(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	blob := []byte("snapshot")
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	c := newStore(t, srv, Config{})
	const repo = "r"
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	var la Lease
	for range 5 { // tokens climb to 5
		var ok bool
		var err error
		if la, ok, err = a.Acquire(ctx, repo, "node-a", time.Minute); err != nil || !ok {
			t.Fatalf("node-a acquire: %v, %v", ok, err)
		}
		if err := a.PutHeadFenced(ctx, la, testHead(repo, la.Token, nil, blob)); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx, la); err != nil {
			t.Fatal(err)
		}
	}
	if la, _, _ = a.Acquire(ctx, repo, "node-a", time.Minute); la.Token != 6 {
		t.Fatalf("token after five leases: got %d, want 6", la.Token)
	}
	if _, err := b.Head(ctx, repo); err != nil { // b read the head of token 5
		t.Fatal(err)
	}
	if h, err := c.Holder(ctx, repo); err != nil || h != "node-a" { // c saw token 6 held
		t.Fatalf("holder: %q, %v", h, err)
	}
	for _, tt := range []struct {
		name string
		s    *Store
		want uint64 // the lowest token it may get
	}{
		{"the holder", a, 7},
		{"a node that read the head", b, 6},
		{"a node that read the lease", c, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := rc.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			l, ok, err := tt.s.Acquire(ctx, repo, "node-x", time.Minute)
			if err != nil || !ok {
				t.Fatalf("acquire on an empty redis: %v, %v", ok, err)
			}
			if l.Token < tt.want {
				t.Errorf("token on an empty redis: got %d, want at least %d", l.Token, tt.want)
			}
		})
	}
}
