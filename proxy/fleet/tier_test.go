package fleet

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// TestFencedWrite: a node whose lease was taken over cannot replace the
// head the new holder wrote, and keeps serving its own; a holder puts
// again a blob Redis lost before writing a head that needs it.
func TestFencedWrite(t *testing.T) {
	srv := redistest.Start(t)
	rc := srv.Client()
	ctx := context.Background()
	rs, err := redisstore.New(redisstore.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	n, err := New(Config{Node: "node-a", Redis: rs})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const repo = "https://rrdp.example.net/notification.xml"
	head := func(serial uint64) *follow.Head {
		b := []byte("state " + string(rune('0'+serial)))
		sum := sha256.Sum256(b)
		if err := n.Cache().PutBlob(ctx, sum, b); err != nil {
			t.Fatal(err)
		}
		return &follow.Head{Repo: repo, Session: "s", Serial: serial, Time: time.Now(),
			Files: []follow.File{{Path: "snapshot", Sum: sum, Size: int64(len(b))}}}
	}

	a, ok, err := rs.Acquire(ctx, repo, "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	n.tier.hold(a)
	if err := n.Cache().PutHead(ctx, repo, head(1)); err != nil {
		t.Fatal(err)
	}
	// node-a's lease expires unnoticed; node-b takes over and writes.
	if err := rc.Del(ctx, "rrdp-proxy:lease:"+repo).Err(); err != nil {
		t.Fatal(err)
	}
	b, ok, err := rs.Acquire(ctx, repo, "node-b", time.Minute)
	if err != nil || !ok || b.Token <= a.Token {
		t.Fatalf("acquire by node-b: %+v, %v, %v; want a larger token than %d", b, ok, err, a.Token)
	}
	h2 := head(2)
	if err := rs.PutHeadFenced(ctx, b, h2); err != nil {
		t.Fatal(err)
	}
	err = n.Cache().PutHead(ctx, repo, head(3))
	if !errors.Is(err, redisstore.ErrNotHeld) {
		t.Fatalf("put head by the deposed node: got %v, want ErrNotHeld", err)
	}
	if got, err := rs.Head(ctx, repo); err != nil || got.Serial != 2 {
		t.Fatalf("redis head: got %+v, %v; want node-b's serial 2", got, err)
	}
	if got := n.Cache().Head(repo); got.Serial != 1 {
		t.Fatalf("deposed node serves serial %d, want its last written, 1", got.Serial)
	}

	// As the holder (node-b's token), after Redis lost a blob.
	n.tier.hold(b)
	h4 := head(4)
	if err := rc.Del(ctx, "rrdp-proxy:blob:"+hexSum(h4.Files[0].Sum)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := n.Cache().PutHead(ctx, repo, h4); err != nil {
		t.Fatal(err)
	}
	if got, err := rs.Head(ctx, repo); err != nil || got.Serial != 4 {
		t.Fatalf("redis head: got %+v, %v; want serial 4", got, err)
	}
	if st := n.Stats(); st.Repaired != 1 || st.HeadWrites != 2 {
		t.Errorf("stats: got %d repaired, %d head writes; want 1 and 2", st.Repaired, st.HeadWrites)
	}
}
