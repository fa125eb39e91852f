package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// hostLog records the Host header, the TLS server name and the path of
// every request a server answered.
type hostLog struct {
	mu    sync.Mutex
	hosts map[string]int
	sni   map[string]int
	paths []string
}

func (l *hostLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.hosts[r.Host]++
		if r.TLS != nil {
			l.sni[r.TLS.ServerName]++
		}
		l.paths = append(l.paths, r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// TestSyncFetchFrom: `sync --fetch-from` follows a repository whose
// notification names its public host (https://rrdp.example.net/, which
// does not resolve here) from the address where it really is, over plain
// http and over https, every request carrying the public Host header (and
// over https the public TLS server name, the certificate being checked
// for it); a later run takes the delta the same way. A --fetch-from with a
// path is a usage error.
func TestSyncFetchFrom(t *testing.T) {
	const public = "rrdp.example.net"
	notif := "https://" + public + "/" + repotest.NotificationPath
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{Profile: repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, Seed: 11,
		BaseURL: "https://" + public + "/"}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{Hosts: []string{public}})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		start func(http.Handler) *httptest.Server
		args  []string
	}{
		{"http", httptest.NewServer, nil},
		{"https", func(h http.Handler) *httptest.Server {
			s := httptest.NewUnstartedServer(h)
			s.TLS = pki.ServerTLS()
			s.StartTLS()
			return s
		}, []string{"--ca-file", pki.CAFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &hostLog{hosts: map[string]int{}, sni: map[string]int{}}
			srv := tc.start(l.wrap(files))
			defer srv.Close()
			out := filepath.Join(t.TempDir(), "tree")
			sync := func(what string) {
				t.Helper()
				args := append([]string{"sync", "--once", "--out", out, "--fetch-from", srv.URL}, tc.args...)
				code, stdout, stderr := runCLI(t, append(args, notif)...)
				in := repo.Info()
				if code != 0 || !strings.Contains(stdout, "serial "+strconv.FormatUint(in.Serial, 10)) {
					t.Fatalf("%s: exit %d, stdout %q; want 0 and serial %d\n%s", what, code, stdout, in.Serial, stderr)
				}
				if got := len(readTree(t, out)); got != in.Objects+1 {
					t.Errorf("%s: %d files, want the %d objects and the marker", what, got, in.Objects)
				}
			}
			sync("first run")
			if err := repo.Advance(now.Add(time.Minute), 1); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Minute)
			sync("after an advance")
			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.hosts) != 1 || l.hosts[public] == 0 {
				t.Errorf("the fetch-from server saw Host headers %v, want only %s", l.hosts, public)
			}
			if tc.name == "https" && (len(l.sni) != 1 || l.sni[public] == 0) {
				t.Errorf("the fetch-from server saw TLS server names %v, want only %s", l.sni, public)
			}
			last := repo.Info().Deltas
			if d := "/" + last[len(last)-1].Path; !slices.Contains(l.paths, d) {
				t.Errorf("the second run did not fetch the new delta %s; paths %v", d, l.paths)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		for _, ff := range []string{"http://127.0.0.1:1/rrdp/", "ftp://127.0.0.1", "http://"} {
			code, _, stderr := runCLI(t, "sync", "--once", "--out", filepath.Join(t.TempDir(), "o"), "--fetch-from", ff, notif)
			if code != 2 || !strings.Contains(stderr, "--fetch-from") {
				t.Errorf("--fetch-from %q: got exit %d, stderr %q; want 2 naming --fetch-from", ff, code, stderr)
			}
		}
	})
}
