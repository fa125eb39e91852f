package cache_test

import (
	"bytes"
	"context"
	"github.com/irpki/rrdp-proxy/cache"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// BenchmarkLoadGenerated measures a warm start from disk for a repository
// made by `rrdp-proxy gen` (the `large` profile, say): it serves the
// directory named by RRDP_PROXY_GEN_DIR at the base URL it was generated
// for, follows it once into a disk tier, then measures a new cache loading
// every head and blob back from that disk, checking every sum. The file
// system cache is warm: the follow just wrote the files. Skipped when
// RRDP_PROXY_GEN_DIR is not set.
//
//	RRDP_PROXY_GEN_DIR=/work/data/large go test ./cache -run '^$' -bench LoadGenerated -benchtime 5x
func BenchmarkLoadGenerated(b *testing.B) {
	dir := os.Getenv("RRDP_PROXY_GEN_DIR")
	if dir == "" {
		b.Skip("RRDP_PROXY_GEN_DIR not set")
	}
	ctx := context.Background()
	notif, err := os.ReadFile(filepath.Join(dir, repotest.NotificationPath))
	if err != nil {
		b.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(notif), rrdpxml.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(n.Snapshot.URI)
	if err != nil {
		b.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		b.Fatalf("snapshot URI %s: no port", n.Snapshot.URI)
	}
	pki, err := rp.NewPKI(b.TempDir(), rp.PKIConfig{})
	if err != nil {
		b.Fatal(err)
	}
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, Port: port, PortWait: time.Minute, NoIPv6: true})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{CAPEM: ca, SnapshotTimeout: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	state := b.TempDir()
	c := newCache(b, cache.Config{Tiers: []cache.Tier{newDisk(b, state)}})
	notifURL := "https://" + u.Host + "/" + repotest.NotificationPath
	f, err := follow.New(follow.Config{URL: notifURL, Client: client, Store: c})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := f.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	h := f.Head()
	var size int64
	for _, fl := range h.Files {
		size += fl.Size
	}
	b.Logf("followed %s serial %d once in %v: %d files, %d bytes", dir, h.Serial, time.Since(start).Round(time.Millisecond), len(h.Files), size)
	c.Close()

	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		c, err := cache.New(cache.Config{Tiers: []cache.Tier{newDisk(b, state)}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Load(ctx); err != nil {
			b.Fatal(err)
		}
		if st := c.Stats(); st.PinnedBytes != size {
			b.Fatalf("pinned after Load: got %d bytes, want %d", st.PinnedBytes, size)
		}
		c.Close()
	}
}
