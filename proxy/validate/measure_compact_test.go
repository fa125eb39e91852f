package validate_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

// TestMeasureCompact measures what publishing the compact format costs the
// node on a repository made by rrdp-proxy gen (RRDP_PROXY_VALIDATE_REPO):
// the time from the follower's head to the first compact serial (the
// validation included, and given apart), its snapshot's size; then the same
// after a serial that changes one CA, with the size of the compact delta.
func TestMeasureCompact(t *testing.T) {
	dir := os.Getenv("RRDP_PROXY_VALIDATE_REPO")
	if dir == "" {
		t.Skip("set RRDP_PROXY_VALIDATE_REPO to a directory made by rrdp-proxy gen")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	signer, err := compact.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	g := newRig(t, ctx, rigConfig{From: dir, Compact: signer})
	step := func(what string, serial uint64) {
		t.Helper()
		start := time.Now()
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		synced := time.Since(start)
		g.waitCompact(func(cp compactState) bool { return cp.serial == serial })
		took := time.Since(start)
		h := g.cache.Head(cache.CompactKey("repo"))
		var snap, delta int64
		for _, f := range h.Files {
			if f.Gzip || !f.Expires.IsZero() || f.Serial != h.Serial {
				continue
			}
			if strings.HasSuffix(f.Path, "delta.bin") {
				delta = f.Size
			} else {
				snap = f.Size
			}
		}
		run := g.v.Status().Runs[0]
		t.Logf("%s: compact serial %d %v after the sync began (sync %v, validation %v of it); compact snapshot %d bytes, delta %d bytes, notification %d bytes; load average %s",
			what, h.Serial, took.Round(time.Millisecond), synced.Round(time.Millisecond), run.Duration.Round(time.Millisecond), snap, delta, len(h.NotificationBin), loadavg())
	}
	step("first state", 1)
	broken := g.breakROAs(func(_, _, points int) bool { return points == 1 })
	t.Logf("changed: %v", broken)
	step("one CA changed", 2)
}
