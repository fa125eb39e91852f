package validate_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

// refusing is a store that refuses compact heads while refuse is set, as
// a fleet's Redis tier refuses those of a node that lost the lease.
type refusing struct {
	follow.Store
	refuse *atomic.Bool
}

var errRefused = errors.New("refused: the lease is another node's")

func (s refusing) PutHead(ctx context.Context, key string, h *follow.Head) error {
	if _, ok := cache.CompactOf(key); ok && s.refuse.Load() {
		return errRefused
	}
	return s.Store.PutHead(ctx, key, h)
}

// TestCompactContinuesFleetHead: a Validator whose first compact serial
// was refused (a fleet node that lost the lease during the run) and that
// later publishes again, once another node has published the compact
// form, continues that node's session from the stored head: the same
// state makes no new serial, and no new session.
func TestCompactContinuesFleetHead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	signer, err := compact.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	refuse.Store(true)
	g := newRig(t, ctx, rigConfig{Profile: gateProfile, Compact: signer,
		CompactStore: func(next follow.Store) follow.Store { return refusing{next, &refuse} }})
	if _, err := g.f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	key := cache.CompactKey("repo")
	// The first serial is refused.
	for {
		st := g.v.Status()
		if len(st.Compact) == 1 && st.Compact[0].Err != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no refused compact serial: status %+v", st.Compact)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if h := g.cache.Head(key); h != nil {
		t.Fatalf("a refused compact serial %d is stored", h.Serial)
	}

	// Another node publishes (here a second Validator over the same
	// cache, the fleet installing its head).
	vc := g.vc
	cc := *vc.Compact
	cc.Store = g.cache
	vc.Compact = &cc
	other, err := validate.New(vc)
	if err != nil {
		t.Fatal(err)
	}
	other.SetCompact([]validate.CompactRepo{{Key: "repo", Name: "repo"}})
	other.Seed("repo", "repo", g.cache.Head("repo"))
	octx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); other.Run(octx) }()
	for g.cache.Head(key) == nil {
		select {
		case <-ctx.Done():
			t.Fatal("the other node published no compact serial")
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	<-done
	fleet := g.cache.Head(key)

	// This node publishes again: it continues the fleet's head.
	refuse.Store(false)
	g.v.RepublishCompact()
	for {
		st := g.v.Status()
		if len(st.Compact) == 1 && st.Compact[0].Err == "" && st.Compact[0].Serial > 0 {
			if cp := st.Compact[0]; cp.Session != fleet.Session || cp.Serial != fleet.Serial {
				t.Errorf("after publishing again: compact session %s serial %d, want the fleet's %s serial %d continued",
					cp.Session, cp.Serial, fleet.Session, fleet.Serial)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no compact state after publishing again: status %+v", st.Compact)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if h := g.cache.Head(key); h != fleet {
		t.Errorf("after publishing again: a new compact head (session %s serial %d), want the fleet's kept", h.Session, h.Serial)
	}
}
