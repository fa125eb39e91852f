package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/proxy/fleet"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

// pausingDisk is a state directory whose GetBlob stops once, when armed,
// before reading the blob at, until resume is closed: a response reading
// that part of a composite file waits there, its headers and first parts
// sent.
type pausingDisk struct {
	*diskstore.Store
	at      [32]byte
	armed   atomic.Bool
	reached chan struct{}
	resume  chan struct{}
}

func (d *pausingDisk) GetBlob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if sum == d.at && d.armed.CompareAndSwap(true, false) {
		close(d.reached)
		<-d.resume
	}
	return d.Store.GetBlob(ctx, sum)
}

// TestDiskCapHeldStream: a retained composite snapshot whose response has
// begun (status 200 and its first part received by a real client) and
// that the state directory's cap then drops, its blobs unneeded by any
// head, is still sent whole with its bytes; new requests for it get 404;
// once the response ended the next pass removes its blobs, and the
// directory keeps to its cap throughout.
func TestDiskCapHeldStream(t *testing.T) {
	ctx := context.Background()
	// Chunks of about 128 objects: a snapshot of three blob parts, the
	// first one larger than fasthttp's write buffer, so that the headers
	// are on the wire before the second part is read.
	profile := repotest.Profile{Members: 4, ROAs: 600, EEKeys: 2}
	// What the current state and a retained serial cost on disk,
	// measured on an identical origin with an uncapped directory.
	m := newEnvProfile(t, ModeMirror, tlsNone, profile, nil)
	mc, md := diskCache(t, t.TempDir(), 0)
	var err error
	if m.follower, err = follow.New(follow.Config{URL: m.notif, Client: m.client, Store: mc, Base: m.base, FragmentMin: 1}); err != nil {
		t.Fatal(err)
	}
	m.sync()
	m.advance(1)
	m.sync()
	cur := md.Cap().Current
	max := cur + (md.Used()-cur)*5/2 // the current state and two serials of retention

	store, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	disk := &pausingDisk{Store: store, reached: make(chan struct{}), resume: make(chan struct{})}
	// Almost no memory beside the pinned current state: the parts of a
	// retained file are read from the directory.
	c, err := cache.New(cache.Config{MaxBytes: 2048, Tiers: []cache.Tier{disk}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := newEnvProfile(t, ModeMirror, tlsNone, profile, func(cfg *Config) { cfg.Cache = c })
	if e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: c, Base: e.base, FragmentMin: 1}); err != nil {
		t.Fatal(err)
	}
	first := e.sync()
	e.advance(1)
	e.sync()
	f := fileOf(t, first, "snapshot", "xml")
	if !f.Composite() {
		t.Fatal("serial 1's snapshot is not composite")
	}
	parts, err := cache.FileParts(ctx, &f, c.Blob)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][32]byte
	for _, p := range parts {
		if p.Sum != ([32]byte{}) {
			blobs = append(blobs, p.Sum)
		}
	}
	if len(blobs) < 2 || parts[0].Size+parts[1].Size < 16<<10 {
		t.Fatalf("serial 1's snapshot has %d blob parts, the first %d bytes; want two or more, the first above 16 KiB", len(blobs), parts[1].Size)
	}
	disk.at = blobs[1]
	disk.armed.Store(true)
	t.Cleanup(func() {
		if disk.armed.Load() {
			return
		}
		select {
		case <-disk.resume:
		default:
			close(disk.resume) // a failed test leaves no response waiting
		}
	})

	// One connection, so that a second request is answered only after the
	// first response's end (its release) on the server.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxConnsPerHost: 1}, Timeout: time.Minute}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get(e.url + e.path(f.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET serial 1's retained snapshot: %d, want 200", resp.StatusCode)
	}
	select {
	case <-disk.reached:
	case <-time.After(time.Minute): // a deadline, not a measure
		t.Fatal("the response never read its second part")
	}

	// The response waits before its second part: the cap drops the file.
	for i := 0; !store.Dropped(f.Key()); i++ {
		if i == 10 {
			t.Fatal("serial 1's snapshot not dropped after 10 serials")
		}
		e.advance(1)
		e.sync()
		if u := store.Used(); u > max {
			t.Fatalf("state directory holds %d bytes, over its cap of %d", u, max)
		}
	}
	heads, err := store.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	needed := make(map[[32]byte]bool)
	for _, sum := range cache.NeededLax(ctx, heads[e.follower.Head().Repo], time.Now(), store.GetBlob) {
		needed[sum] = true
	}
	if needed[disk.at] {
		t.Fatal("the stored head still needs the part the response waits for: the test shows nothing")
	}
	st := store.Cap()
	if st.Held == 0 {
		t.Errorf("Cap while the response waits: got %+v, want the file's blobs held", st)
	}
	_, metrics := e.get("GET", "/metrics")
	if got, ok := metricValue(string(metrics), `rrdp_proxy_cache_tier_held_bytes{tier="tier1"}`); !ok || got != float64(st.Held) {
		t.Errorf("/metrics: rrdp_proxy_cache_tier_held_bytes: got %v (found %v), want %d", got, ok, st.Held)
	}
	if r, _ := e.get("GET", e.path(f.Path)); r.StatusCode != http.StatusNotFound || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET the dropped snapshot anew: %d, Cache-Control %q; want 404, no-store", r.StatusCode, r.Header.Get("Cache-Control"))
	}

	close(disk.resume)
	body, err := io.ReadAll(resp.Body)
	if err != nil || int64(len(body)) != f.Size || sha256.Sum256(body) != f.Sum {
		t.Fatalf("the response begun before the drop: %d bytes (%v), want the file's %d bytes", len(body), err, f.Size)
	}
	resp.Body.Close()
	// On the same connection: the server ended the first response.
	if r, err := client.Get(e.url + e.path("notification.xml")); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("GET the notification after: %v", err)
	} else {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if st := store.Cap(); st.Held != 0 {
		t.Errorf("Cap after the response: Held %d, want 0", st.Held)
	}
	e.advance(1)
	e.sync()
	if _, err := store.GetBlob(ctx, disk.at); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the released part after the next serial: %v, want removed", err)
	}
	if u := store.Used(); u > max {
		t.Errorf("state directory holds %d bytes, over its cap of %d", u, max)
	}
}

// TestDiskCapSharedTier: in a fleet, a retained snapshot the node's state
// directory dropped to keep to its cap is served from Redis, which still
// holds it (DESIGN.md: a node looks in the shared tier before answering
// 404), whole and in both encodings; one whose blobs Redis lost too gets
// 404 no-store.
func TestDiskCapSharedTier(t *testing.T) {
	ctx := context.Background()
	const serials = 6
	m := newEnv(t, ModeMirror)
	mc, md := diskCache(t, t.TempDir(), 0)
	var err error
	if m.follower, err = follow.New(follow.Config{URL: m.notif, Client: m.client, Store: mc, Base: m.base, FragmentMin: 1}); err != nil {
		t.Fatal(err)
	}
	m.sync()
	for range serials - 1 {
		m.advance(1)
		m.sync()
	}
	cur := md.Cap().Current
	max := cur + (md.Used()-cur)/(serials-1)*5/2

	srv := redistest.Start(t)
	rs, err := redisstore.New(redisstore.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	disk, err := diskstore.Open(diskstore.Config{Dir: t.TempDir(), MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	node, err := fleet.New(fleet.Config{Node: "a", Redis: rs, Cache: cache.Config{MaxBytes: 2048, Tiers: []cache.Tier{disk}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	c := node.Cache()
	e := newEnvConfig(t, ModeMirror, tlsNone, func(cfg *Config) { cfg.Cache = c })
	if e.follower, err = follow.New(follow.Config{URL: e.notif, Client: e.client, Store: c, Base: e.base, FragmentMin: 1}); err != nil {
		t.Fatal(err)
	}
	first := e.sync()
	for range serials - 1 {
		e.advance(1)
		e.sync()
	}
	var snaps []follow.File
	for _, f := range first.Files {
		if f.Kind.String() == "snapshot" && f.Composite() {
			snaps = append(snaps, f)
		}
	}
	if len(snaps) != 4 {
		t.Fatalf("serial 1 has %d composite snapshot files, want 4 (XML and .bin, each with its gzip copy)", len(snaps))
	}
	for _, f := range snaps {
		if !disk.Dropped(f.Key()) {
			t.Fatalf("serial 1's %s (gzip %v) not dropped by the state directory", f.Path, f.Gzip)
		}
		if _, err := disk.GetBlob(ctx, f.Index); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("serial 1's %s: its part list still in the state directory (%v)", f.Path, err)
		}
	}
	plain := make(map[string][32]byte) // a composite gzip copy's Sum is its Index: check what it decompresses to
	for _, f := range snaps {
		if !f.Gzip {
			plain[f.Path] = f.Sum
		}
	}
	for _, f := range snaps {
		enc := "identity"
		if f.Gzip {
			enc = "gzip"
		}
		resp, body := e.get("GET", e.path(f.Path), "Accept-Encoding", enc)
		got := int64(len(body))
		if f.Gzip && resp.StatusCode == http.StatusOK {
			if body, err = gunzip(body); err != nil {
				t.Errorf("GET serial 1's %s (gzip): %v", f.Path, err)
			}
		}
		if resp.StatusCode != http.StatusOK || got != f.Size || sha256.Sum256(body) != plain[f.Path] {
			t.Errorf("GET serial 1's %s (%s), dropped by the disk, held by Redis: %d, %d bytes; want 200 with its %d bytes",
				f.Path, enc, resp.StatusCode, got, f.Size)
		}
	}

	// Redis loses a chunk of one: that one is 404, before any header.
	lost := snaps[0]
	keys, err := srv.Client().Keys(ctx, "*blob:"+hex.EncodeToString(lost.Index[:])+":0").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("the first chunk of %s's part list in Redis: %v, %v", lost.Path, keys, err)
	}
	if err := srv.Client().Del(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	enc := "identity"
	if lost.Gzip {
		enc = "gzip"
	}
	if resp, _ := e.get("GET", e.path(lost.Path), "Accept-Encoding", enc); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET %s, lost by the disk and by Redis: %d, Cache-Control %q; want 404, no-store", lost.Path, resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

// gunzip returns the bytes b decompresses to.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
