package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestStatus: one node's status is read by another, a missing one is
// absent, an oversized one refused, and the TTL holds in Redis.
func TestStatus(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	ctx := context.Background()
	if err := a.PutStatus(ctx, "ripe", []byte(`{"node":"a"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := b.Statuses(ctx, []string{"ripe", "arin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got["ripe"]) != `{"node":"a"}` {
		t.Errorf("Statuses: got %q, want ripe's alone", got)
	}
	if ttl, err := a.rdb.TTL(ctx, a.statusKey("ripe")).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL of the status: got %v, %v; want within a minute", ttl, err)
	}
	if err := a.PutStatus(ctx, "ripe", []byte(strings.Repeat("x", maxStatus+1)), time.Minute); err == nil {
		t.Error("PutStatus accepted an oversized status")
	}
	if got, err := b.Statuses(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Statuses(nil): got %v, %v", got, err)
	}
}
