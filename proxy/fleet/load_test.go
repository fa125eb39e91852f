package fleet

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// TestLoadConfiguredOnly: a node loads from Redis the heads of the
// repositories it follows and leaves the others' (removed from the
// configuration, or another deployment's) unpinned; DeleteHead removes
// such a head from Redis and refuses one the node follows.
func TestLoadConfiguredOnly(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := redisstore.New(redisstore.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for _, repo := range []string{"kept", "removed", cache.CompactKey("removed")} {
		b := []byte("snapshot of " + repo)
		sum := sha256.Sum256(b)
		if err := rs.PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
		if err := rs.PutHead(ctx, repo, &follow.Head{Repo: repo, Session: "s", Serial: 1, Time: time.Now(),
			Files: []follow.File{{Path: "snapshot", Sum: sum, Size: int64(len(b))}}}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := New(Config{Node: "node-a", Redis: rs, RenewInterval: 50 * time.Millisecond, ResyncInterval: 50 * time.Millisecond,
		Repos: []follow.Config{{URL: "https://127.0.0.1:1/notification.xml", Repo: "kept"}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		n.Close()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for n.Cache().Head("kept") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the configured repository's head was never loaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h := n.Cache().Head("removed"); h != nil {
		t.Errorf("node configured for %q pins the head of %q (serial %d)", "kept", "removed", h.Serial)
	}
	if err := n.DeleteHead(ctx, "kept"); err == nil {
		t.Errorf("delete the head of a followed repository: got no error")
	}
	if err := n.DeleteHead(ctx, "removed"); err != nil {
		t.Fatalf("delete head: %v", err)
	}
	heads, err := rs.Heads(ctx)
	if err != nil || len(heads) != 1 || heads["kept"] == nil {
		t.Errorf("heads in redis after DeleteHead: got %v, %v; want kept's only (removed's compact head deleted too)", heads, err)
	}

	// A head Redis holds damaged is written over by the holder.
	rc := redis.NewClient(&redis.Options{Addr: strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "redis://"), "/0")})
	defer rc.Close()
	if err := rc.Set(ctx, "rrdp-proxy:head:kept", `{"repo":"kept","head":{"Serial":"x"}}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		h, err := rs.Head(ctx, "kept")
		if err == nil && h != nil && h.Serial == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("damaged head in redis never written over: %v, %v", h, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
