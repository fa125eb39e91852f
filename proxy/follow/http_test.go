package follow

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestHTTPBase: a follower publishing under an http:// Base fails its
// sync by default (relying parties expect https), and with AllowHTTP
// writes http URIs into both notifications, which decode under
// Limits.AllowHTTP only.
func TestHTTPBase(t *testing.T) {
	const base = "http://edge.internal/rrdp/"
	for _, tt := range []struct {
		name  string
		allow bool
	}{{"refused by default", false}, {"opted in", true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			f, err := New(Config{
				URL: e.repo.base + "notification.xml", Client: e.client, Store: e.store, Base: base, AllowHTTP: tt.allow,
				Now:    func() time.Time { return e.now },
				Logger: slog.New(slog.NewTextHandler(e.log, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Sync(context.Background())
			if !tt.allow {
				if err == nil || !strings.Contains(err.Error(), "https") {
					t.Fatalf("sync with base %s: got %v, want an error about https", base, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			h := e.store.Head(f.cfg.Repo)
			if h == nil {
				t.Fatal("no head after a sync")
			}
			n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{AllowHTTP: true})
			if err != nil || !strings.HasPrefix(n.Snapshot.URI, base) {
				t.Errorf("notification.xml: snapshot %q, %v; want a URI under %s", n.Snapshot.URI, err, base)
			}
			if _, _, err := rrdpxml.DecodeNotification(bytes.NewReader(h.NotificationXML), rrdpxml.Limits{}); err == nil {
				t.Errorf("notification.xml with http URIs decodes under the default limits")
			}
			nb, err := irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{AllowHTTP: true})
			if err != nil || !strings.HasPrefix(nb.Snapshot.URI, base) {
				t.Errorf("notification.bin: snapshot %v, %v; want a URI under %s", nb, err, base)
			}
			if _, err := irpki.UnmarshalNotification(h.NotificationBin, rrdpxml.Limits{}); err == nil {
				t.Errorf("notification.bin with http URIs decodes under the default limits")
			}
		})
	}
}
