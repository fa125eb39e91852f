package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// desc describes a head in a message.
func desc(h *cache.Head) string {
	if h == nil {
		return "no head"
	}
	return "serial " + strconv.FormatUint(h.Serial, 10)
}

// TestCompanionFenced: the head of a repository's compact publication is
// written only by the holder of the repository's lease, exactly (a
// deposed holder, another node, a lease without a token are refused), is
// announced under its own key, and is not written for a key that is not
// the lease's repository's companion.
func TestCompanionFenced(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	const repo = "https://a.example/notification.xml"
	key := cache.CompactKey(repo)
	blob := []byte("compact snapshot")
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	la, ok, err := a.Acquire(ctx, repo, "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("node-a acquire: %v, %v", ok, err)
	}
	if err := a.PutCompanionFenced(ctx, la, key, testHead(key, 1, nil, blob)); err != nil {
		t.Fatalf("the holder's compact head: %v", err)
	}
	select {
	case got := <-sub:
		if got != key {
			t.Errorf("announcement %q, want %q", got, key)
		}
	case <-ctx.Done():
		t.Fatal("no announcement of the compact head")
	}
	refused := []struct {
		name string
		put  func() error
		want error
	}{
		{"a lease without a token", func() error { return b.PutCompanionFenced(ctx, Lease{Repo: repo}, key, testHead(key, 2, nil, blob)) }, ErrNotHeld},
		{"another node's value", func() error {
			l := la
			l.Node = "node-b"
			return b.PutCompanionFenced(ctx, l, key, testHead(key, 2, nil, blob))
		}, ErrNotHeld},
		{"not a companion of the lease's repository", func() error {
			return a.PutCompanionFenced(ctx, la, cache.CompactKey("https://b.example/notification.xml"), testHead(key, 2, nil, blob))
		}, nil},
		{"the repository's own head", func() error { return a.PutCompanionFenced(ctx, la, repo, testHead(repo, 2, nil, blob)) }, nil},
	}
	for _, c := range refused {
		err := c.put()
		if err == nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want an error wrapping %v", c.name, err, c.want)
		}
	}
	if err := a.PutHeadFenced(ctx, Lease{Repo: repo}, testHead(repo, 2, nil, blob)); !errors.Is(err, ErrNotHeld) {
		t.Errorf("PutHeadFenced with a lease without a token: got %v, want ErrNotHeld", err)
	}

	// The lease taken over: the deposed holder's write is refused.
	if err := srv.Client().Del(ctx, a.leaseKey(repo)).Err(); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := b.Acquire(ctx, repo, "node-b", time.Minute)
	if err != nil || !ok {
		t.Fatalf("node-b acquire: %v, %v", ok, err)
	}
	if err := a.PutCompanionFenced(ctx, la, key, testHead(key, 2, nil, blob)); !errors.Is(err, ErrNotHeld) {
		t.Errorf("deposed holder: got %v, want ErrNotHeld", err)
	}
	if err := b.PutCompanionFenced(ctx, lb, key, testHead(key, 2, nil, blob)); err != nil {
		t.Fatalf("the new holder's compact head: %v", err)
	}
	h, err := a.Head(ctx, key)
	if err != nil || h == nil || h.Serial != 2 {
		t.Fatalf("compact head: got %v, %v; want the new holder's serial 2", desc(h), err)
	}
	switch rh, err := a.Head(ctx, repo); {
	case err != nil:
		t.Errorf("the repository's own head: %v", err)
	case rh != nil:
		t.Errorf("the repository's own head: serial %d written unfenced, want none", rh.Serial)
	}
}
