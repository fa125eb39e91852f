package redisstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestOutage kills Redis under a Store: every call fails with an error
// (not a missing blob), and after Redis restarts on the same port the same
// Store works again.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
	})
	ctx := context.Background()
	const repo = "https://rrdp.example.net/notification.xml"
	blob := []byte("snapshot")
	sum := sha256.Sum256(blob)
	if err := st.PutBlob(ctx, sum, blob); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"ping", func() error { return st.Ping(ctx) }},
		{"get blob", func() error { _, err := st.GetBlob(ctx, sum); return err }},
		{"put blob", func() error { return st.PutBlob(ctx, sum, blob) }},
		{"heads", func() error { _, err := st.Heads(ctx); return err }},
		{"head", func() error { _, err := st.Head(ctx, repo); return err }},
		{"put head", func() error { return st.PutHead(ctx, repo, testHead(repo, 1, nil, blob)) }},
		{"acquire", func() error { _, _, err := st.Acquire(ctx, repo, "node-a", time.Minute); return err }},
		{"renew", func() error { return st.Renew(ctx, Lease{Repo: repo, Node: "node-a", Token: 1}, time.Minute) }},
		{"subscribe", func() error { _, err := st.Subscribe(ctx); return err }},
	}
	for _, c := range calls {
		t.Run("down/"+c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call()
			if err == nil {
				t.Fatal("got no error with Redis down")
			}
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotHeld) {
				t.Fatalf("got %v, want a connection error, not a missing value", err)
			}
			t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}

	srv.Restart() // empty: no persistence
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	if _, err := st.GetBlob(ctx, sum); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("get blob from the empty restarted server: got %v, want fs.ErrNotExist", err)
	}
	if err := st.PutBlob(ctx, sum, blob); err != nil {
		t.Fatalf("put blob after restart: %v", err)
	}
	got, err := st.GetBlob(ctx, sum)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("get blob after restart: got %q, %v; want %q", got, err, blob)
	}
	if _, ok, err := st.Acquire(ctx, repo, "node-a", time.Minute); err != nil || !ok {
		t.Fatalf("acquire after restart: got %v, %v", ok, err)
	}
}

// TestHungServer stops Redis without closing its socket (SIGSTOP): calls
// fail by the read timeout instead of blocking, and work again once it
// continues.
func TestHungServer(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, Config{
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond,
	})
	ctx := context.Background()
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := st.GetBlob(ctx, sha256.Sum256([]byte("x")))
	t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v with Redis stopped, want a timeout", err)
	}
	if err := srv.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping after SIGCONT: %v", err)
	}
}
