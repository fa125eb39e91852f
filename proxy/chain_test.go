package proxy

import (
	"context"
	"crypto/sha256"
	"os"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// TestChain follows the proxy's notification.bin with a second follower,
// as an edge rrdp-proxy follows a core one: the edge must hold exactly the
// core's objects, first from the .bin snapshot, then from .bin deltas.
func TestChain(t *testing.T) {
	for _, tt := range []struct {
		name string
		tls  tlsMode
	}{{"cert files", tlsFiles}, {"tls config", tlsConfig}} {
		t.Run(tt.name, func(t *testing.T) { testChain(t, tt.tls) })
	}
}

func testChain(t *testing.T, mode tlsMode) {
	ctx := context.Background()
	core := newEnvTLS(t, ModeReverse, mode)
	core.sync()
	ca, err := os.ReadFile(core.pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	edgeCache, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer edgeCache.Close()
	edge, err := follow.New(follow.Config{URL: core.base + "notification.bin", Client: client, Store: edgeCache,
		Base: "https://edge.example.net/rrdp/"})
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string) {
		t.Helper()
		if _, err := edge.Sync(ctx); err != nil {
			t.Fatalf("%s: edge sync: %v", what, err)
		}
		if got, want := edge.Head().Serial, core.follower.Head().Serial; got != want {
			t.Errorf("%s: edge serial %d, core %d", what, got, want)
		}
		if got, want := objectsSum(t, edge), objectsSum(t, core.follower); got != want {
			t.Errorf("%s: edge objects differ from the core's", what)
		}
	}
	same("snapshot")
	r := core.srv.tab.Load().repos[0]
	snaps := r.m.requests[kindSnapshot][formatBin][codeIndex(200)].Load()
	if snaps != 1 {
		t.Errorf("core served %d .bin snapshots, want 1", snaps)
	}
	core.advance(2)
	core.sync()
	same("two deltas")
	if n := r.m.requests[kindDelta][formatBin][codeIndex(200)].Load(); n != 2 {
		t.Errorf("core served %d .bin deltas, want 2", n)
	}
	if n := r.m.requests[kindSnapshot][formatBin][codeIndex(200)].Load(); n != snaps {
		t.Errorf("core served %d .bin snapshots after the deltas, want still %d", n, snaps)
	}
}

// objectsSum hashes every object of a follower's state, in URI order.
func objectsSum(t *testing.T, f *follow.Follower) [32]byte {
	t.Helper()
	h := sha256.New()
	err := f.WalkObjects(func(uri string, content []byte) error {
		h.Write([]byte(uri))
		h.Write([]byte{0})
		c := sha256.Sum256(content)
		h.Write(c[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
