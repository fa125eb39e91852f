package proxy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestCatchupRetainedGone: a newer head found by catch-up (behind a load
// balancer, Redis's head) names a retained file whose bytes no tier
// holds any more (dropped by a cap, evicted from memory): the answer is
// 404 no-store, as for the node's own retained files, not a 500 for a
// broken invariant.
func TestCatchupRetainedGone(t *testing.T) {
	var ahead *follow.Head
	e := newEnvConfig(t, ModeMirror, tlsNone, func(cfg *Config) {
		cfg.Catchup = func(_ context.Context, _, _ string) (*follow.Head, error) { return ahead, nil }
	})
	h := e.sync()
	var snap follow.File
	for _, f := range h.Files {
		if f.Kind == rrdpxml.KindSnapshot && f.Format == irpki.FormatXML && !f.Gzip {
			snap = f
		}
	}
	if snap.Path == "" {
		t.Fatal("no snapshot.xml in the head")
	}
	next := *h
	next.Serial = h.Serial + 2
	gone := snap
	gone.Path = fmt.Sprintf("%s/%d/0123456789abcdef/snapshot.xml", h.Session, h.Serial+1)
	gone.Sum = sha256.Sum256([]byte("bytes no tier holds"))
	gone.Expires = time.Now().Add(time.Hour) // retained: it left the notification
	next.Files = append(append([]follow.File(nil), h.Files...), gone)
	ahead = &next

	resp, _ := e.get("GET", e.path(gone.Path))
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("a retained file of a newer head that no tier holds: got %d, Cache-Control %q; want 404, no-store",
			resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
