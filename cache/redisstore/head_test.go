package redisstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

var now = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// testHead returns a head of repo naming blobs, the first of them expired.
func testHead(repo string, serial uint64, blobs ...[]byte) *cache.Head {
	h := &cache.Head{
		Repo:            repo,
		Session:         "9df4b597-af9e-4dca-bdda-719cce2c4e28",
		Serial:          serial,
		Time:            now,
		NotificationXML: []byte("<notification/>"),
		NotificationBin: []byte{1, 2, 3},
	}
	for i, b := range blobs {
		f := cache.File{Path: "f" + string(rune('a'+i)), Sum: sha256.Sum256(b), Size: int64(len(b)), Serial: serial}
		if i == 0 {
			f.Expires = now.Add(-time.Minute)
		}
		h.Files = append(h.Files, f)
	}
	return h
}

func TestHeadAfterBlobs(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	const repo = "https://rrdp.example.net/notification.xml"
	expired, b1, b2 := []byte("expired"), []byte("snapshot"), []byte("delta")
	h := testHead(repo, 7, expired, b1, b2)

	if err := st.PutBlob(ctx, sha256.Sum256(b1), b1); err != nil {
		t.Fatal(err)
	}
	if err := st.PutHead(ctx, repo, h); err == nil {
		t.Fatal("put head with a blob missing: got no error")
	}
	if got, err := st.Heads(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after a refused head: got %v, %v; want no heads", got, err)
	}
	// The expired file's blob is not needed.
	if err := st.PutBlob(ctx, sha256.Sum256(b2), b2); err != nil {
		t.Fatal(err)
	}
	if err := st.PutHead(ctx, repo, h); err != nil {
		t.Fatal(err)
	}
	got, err := st.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]*cache.Head{repo: h}) {
		t.Errorf("got heads %+v, want %+v", got, h)
	}
	one, err := st.Head(ctx, repo)
	if err != nil || !reflect.DeepEqual(one, h) {
		t.Errorf("got head %+v, %v; want %+v", one, err, h)
	}
	none, err := st.Head(ctx, "https://other.example/notification.xml")
	if err != nil || none != nil {
		t.Errorf("got head %+v, %v for an unknown repository; want nil, nil", none, err)
	}
	if err := st.PutHead(ctx, repo, nil); err == nil {
		t.Error("put nil head: got no error")
	}
}

func TestSubscribe(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, srv, Config{})
	b := newStore(t, srv, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subCtx, stop := context.WithCancel(ctx)
	repos, err := b.Subscribe(subCtx)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("snapshot")
	if err := a.PutBlob(ctx, sha256.Sum256(blob), blob); err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.example/notification.xml", "https://b.example/notification.xml"}
	for i, repo := range want {
		if err := a.PutHead(ctx, repo, testHead(repo, uint64(i), nil, blob)); err != nil {
			t.Fatal(err)
		}
	}
	for _, repo := range want {
		select {
		case got := <-repos:
			if got != repo {
				t.Fatalf("got announcement %q, want %q", got, repo)
			}
		case <-ctx.Done():
			t.Fatalf("no announcement of %s: %v", repo, ctx.Err())
		}
		h, err := b.Head(ctx, repo)
		if err != nil || h == nil || h.Repo != repo {
			t.Fatalf("head of %s read by the second client: got %+v, %v", repo, h, err)
		}
	}
	stop()
	for range repos {
		// drain until closed
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("subscription channel not closed when its context ended")
	}
}

func TestPrefix(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := newStore(t, srv, Config{Prefix: "fleet-a:"})
	b := newStore(t, srv, Config{Prefix: "fleet-b:"})
	const repo = "https://rrdp.example.net/notification.xml"
	blob := []byte("snapshot")
	sum := sha256.Sum256(blob)
	if err := a.PutBlob(ctx, sum, blob); err != nil {
		t.Fatal(err)
	}
	if err := a.PutHead(ctx, repo, testHead(repo, 1, nil, blob)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		st    *Store
		heads int
	}{
		{"same prefix", a, 1},
		{"other prefix", b, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.st.Heads(ctx)
			if err != nil || len(got) != tt.heads {
				t.Fatalf("got %d heads, %v; want %d", len(got), err, tt.heads)
			}
			_, err = tt.st.GetBlob(ctx, sum)
			if (err == nil) != (tt.heads == 1) {
				t.Fatalf("get blob: got %v", err)
			}
		})
	}
}

func TestSubscribeClose(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{})
	repos, err := st.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the subscription: its channel is closed.
	if _, ok := <-repos; ok {
		t.Fatal("got an announcement after Close, want a closed channel")
	}
}
