package proxy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// diskCache returns a cache whose one tier is a state directory in dir
// capped at max bytes (0: none), with almost no memory for what is not
// pinned, so that a file the disk lost cannot be served from memory.
func diskCache(t *testing.T, dir string, max int64) (*cache.Cache, *diskstore.Store) {
	t.Helper()
	disk, err := diskstore.Open(diskstore.Config{Dir: dir, MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{MaxBytes: 2048, Tiers: []cache.Tier{disk}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, disk
}

// TestDiskCapEvicted: a state directory capped below what the retention
// of a few serials needs drops the oldest retained snapshots; through the
// real server they answer 404 no-store (never 500), the newest retained
// one and every file the notification names are served, the directory
// stays under its cap, and a restarted store's head does not name the
// dropped files.
func TestDiskCapEvicted(t *testing.T) {
	for _, min := range []int64{0, 1} { // whole and composite snapshots
		t.Run(fmt.Sprintf("FragmentMin %d", min), func(t *testing.T) {
			ctx := context.Background()
			// What the current state and a retained serial cost on disk
			// after six serials, measured on an identical origin with an
			// uncapped directory.
			const serials = 6
			m := newEnv(t, ModeMirror)
			mc, md := diskCache(t, t.TempDir(), 0)
			mf, err := follow.New(follow.Config{URL: m.notif, Client: m.client, Store: mc, Base: m.base, FragmentMin: min})
			if err != nil {
				t.Fatal(err)
			}
			m.follower = mf
			m.sync()
			for range serials - 1 {
				m.advance(1)
				m.sync()
			}
			cur := md.Cap().Current
			retained := (md.Used() - cur) / (serials - 1)
			max := cur + retained*5/2 // the current state and two serials of retention

			dir := t.TempDir()
			c, disk := diskCache(t, dir, max)
			e := newEnvConfig(t, ModeMirror, tlsNone, func(cfg *Config) { cfg.Cache = c })
			if e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: c, Base: e.base, FragmentMin: min}); err != nil {
				t.Fatal(err)
			}
			first := e.sync()
			var h *follow.Head
			for range serials - 1 {
				e.advance(1)
				h = e.sync()
				if u := disk.Used(); u > max {
					t.Fatalf("serial %d: state directory holds %d bytes, over its cap of %d", h.Serial, u, max)
				}
			}
			if st := disk.Cap(); st.Evictions == 0 || st.OverMax {
				t.Fatalf("Cap: got %+v, want evictions, not over", st)
			}
			for _, f := range first.Files {
				if f.Kind.String() != "snapshot" {
					continue
				}
				for _, gz := range []string{"identity", "gzip"} {
					resp, _ := e.get("GET", e.path(f.Path), "Accept-Encoding", gz)
					if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
						t.Errorf("GET the dropped %s (%s): %d, Cache-Control %q; want 404, no-store", f.Path, gz, resp.StatusCode, resp.Header.Get("Cache-Control"))
					}
				}
			}
			var newest *follow.File
			for i := range h.Files {
				f := &h.Files[i]
				switch {
				case f.Gzip:
				case f.Expires.IsZero():
					resp, body := e.get("GET", e.path(f.Path))
					if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != f.Sum {
						t.Errorf("GET the current %s: %d, want 200 with its bytes", f.Path, resp.StatusCode)
					}
				case newest == nil || f.Serial > newest.Serial:
					newest = f
				}
			}
			if newest == nil {
				t.Fatal("no retained file")
			}
			if resp, body := e.get("GET", e.path(newest.Path)); resp.StatusCode != http.StatusOK || sha256.Sum256(body) != newest.Sum {
				t.Errorf("GET the newest retained %s: %d, want 200 with its bytes", newest.Path, resp.StatusCode)
			}

			// The metrics say it.
			_, body := e.get("GET", "/metrics")
			for name, want := range map[string]float64{
				"rrdp_proxy_cache_tier_max_bytes":       float64(max),
				"rrdp_proxy_cache_tier_evictions_total": float64(disk.Cap().Evictions),
				"rrdp_proxy_cache_tier_over_max":        0,
			} {
				if got, ok := metricValue(string(body), name+`{tier="tier1"}`); !ok || got != want {
					t.Errorf("/metrics: %s: got %v (found %v), want %v", name, got, ok, want)
				}
			}

			// What a restart reads.
			again, err := diskstore.Open(diskstore.Config{Dir: dir, MaxBytes: max})
			if err != nil {
				t.Fatal(err)
			}
			heads, err := again.Heads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stored := heads[e.follower.Head().Repo]
			if stored == nil {
				t.Fatal("no stored head")
			}
			for _, f := range stored.Files {
				if f.Serial == first.Serial && f.Kind.String() == "snapshot" {
					t.Errorf("the stored head still names the dropped %s", f.Path)
				}
			}
		})
	}
}

// metricValue returns the value of the sample series (name and labels)
// in a Prometheus text exposition.
func metricValue(text, series string) (float64, bool) {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}
