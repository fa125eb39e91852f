package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// getHost fetches url with the Host header host.
func getHost(host, url string) (int, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = host
	resp, err := testClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// TestServeFetchFrom: a reverse repository whose origin is its public
// https name, with fetch_from pointing at a plain http server on
// loopback: the follower syncs through it, and so does pull-through (a
// snapshot the origin published after the proxy's last poll), every
// request arriving with the public Host header.
func TestServeFetchFrom(t *testing.T) {
	const public = "rrdp.example.net"
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{Profile: repotest.Profile{Members: 1, ROAs: 2, EEKeys: 1}, Seed: 3,
		BaseURL: "https://" + public + "/"}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hosts := map[string]int{}
	files := http.FileServer(http.Dir(dir))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host]++
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer origin.Close()

	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	r := startServe(t, file, "127.0.0.1:0", func(addr string) {
		writeAtomic(t, file, fmt.Appendf(nil, `[server]
listen = [%q]

[[repository]]
name = "rir"
origin = "https://%s/rrdp/notification.xml"
fetch_from = %q
mode = "reverse"
hosts = [%q]
poll_interval = "1h"
max_backoff = "1h"
`, addr, public, origin.URL, public))
	})
	deadline := time.Now().Add(time.Minute)
	var notif []byte
	for {
		code, b, err := getHost(public, r.base+"/rrdp/notification.xml")
		if err == nil && code == http.StatusOK {
			notif = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification through fetch_from: got %d, %v within a minute\nlog:\n%s", code, err, r.log)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(notif), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Serial != repo.Info().Serial || !strings.HasPrefix(n.Snapshot.URI, "https://"+public+"/rrdp/") {
		t.Errorf("served notification: serial %d, snapshot %s; want serial %d under https://%s/rrdp/", n.Serial, n.Snapshot.URI, repo.Info().Serial, public)
	}

	// The origin moves on; the proxy polls again only in an hour, so its
	// new snapshot is a pull-through, vouched for by the origin's new
	// notification, both fetched from fetch_from.
	if err := repo.Advance(now.Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	snap := repo.Info().Snapshot
	code, b, err := getHost(public, r.base+"/"+snap.Path)
	if err != nil || code != http.StatusOK || sha256.Sum256(b) != snap.Hash {
		t.Fatalf("pull-through of the origin's new snapshot: got %d, %v; want 200 and its bytes\nlog:\n%s", code, err, r.log)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 1 || hosts[public] == 0 {
		t.Errorf("the fetch_from server saw Host headers %v, want only %s", hosts, public)
	}
	r.stop(t)
}
