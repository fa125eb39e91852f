package upstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// safety bounds the wait for a result that must come promptly: past it
// the test fails instead of hanging. It is no timing assertion.
const safety = 30 * time.Second

// TestCancelBlockedFetch: a Fetch waiting for an origin that accepted the
// connection and sends nothing returns once its context is cancelled, with
// a context.Canceled cause, although every deadline of the client is far
// away: the wait for the headers, and the TLS handshake.
func TestCancelBlockedFetch(t *testing.T) {
	addr, accepted := rp.SilentOrigin(t)
	far := Config{ConnectTimeout: time.Hour, TLSHandshakeTimeout: time.Hour, HeaderTimeout: time.Hour,
		NotificationTimeout: time.Hour, SnapshotTimeout: time.Hour, MinRate: -1}
	for _, tc := range []struct{ name, url string }{
		{"waiting for the headers", "http://" + addr + "/notification.xml"},
		{"in the tls handshake", "https://" + addr + "/notification.xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, far)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				r, err := c.Fetch(ctx, Request{URL: tc.url, Kind: rrdpxml.KindSnapshot})
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			select {
			case <-accepted:
			case <-time.After(safety):
				t.Fatal("the origin saw no connection")
			}
			cancel()
			select {
			case err := <-done:
				wantErr(t, err, context.Canceled)
				if errors.Is(err, ErrTimeout) {
					t.Errorf("got %v, want a cancellation, not a timeout", err)
				}
			case <-time.After(safety):
				t.Fatalf("Fetch still blocked %v after its context was cancelled", safety)
			}
		})
	}
}

// TestFetchTimeoutByContext: the caller's deadline ends a fetch blocked on
// headers as ErrTimeout (and context.DeadlineExceeded).
func TestFetchTimeoutByContext(t *testing.T) {
	addr, _ := rp.SilentOrigin(t)
	c := newClient(t, Config{HeaderTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Fetch(ctx, Request{URL: "http://" + addr + "/n.xml"})
	wantErr(t, err, ErrTimeout)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want it to wrap context.DeadlineExceeded too", err)
	}
}

// TestHTTP2: an origin that offers HTTP/2 is fetched over it, with the
// body still decoded, capped and hashed here; one that does not is
// fetched over HTTP/1.1.
func TestHTTP2(t *testing.T) {
	plain := bytes.Repeat([]byte("<snapshot/>"), 1000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			http.Error(w, "want Accept-Encoding: gzip", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	})
	for _, tc := range []struct {
		name  string
		h2    bool
		proto string
	}{
		{"offered", true, "HTTP/2.0"},
		{"not offered", false, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(handler)
			srv.EnableHTTP2 = tc.h2
			srv.StartTLS()
			defer srv.Close()
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			c := newClient(t, Config{RootCAs: pool})
			r, b, err := get(t, c, Request{URL: srv.URL + "/s.xml", Kind: rrdpxml.KindSnapshot})
			if err != nil {
				t.Fatal(err)
			}
			if r.Proto != tc.proto {
				t.Errorf("got proto %q, want %q", r.Proto, tc.proto)
			}
			if !bytes.Equal(b, plain) || r.Body.Sum() != sha256.Sum256(plain) {
				t.Errorf("got %d bytes, want the %d decoded bytes and their sum", len(b), len(plain))
			}
			small := newClient(t, Config{RootCAs: pool, MaxSnapshotSize: 1000})
			_, _, err = get(t, small, Request{URL: srv.URL + "/s.xml", Kind: rrdpxml.KindSnapshot})
			wantErr(t, err, ErrTooLarge)
		})
	}
}

// TestConnectionsKept: sequential fetches of whole bodies reuse one
// connection (the pool works with the client's own gzip handling).
func TestConnectionsKept(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("<notification/>"))
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gz.Bytes())
	}))
	defer srv.Close()
	c := newClient(t, Config{})
	for i := range 5 {
		if _, b, err := get(t, c, Request{URL: srv.URL + "/n.xml"}); err != nil || string(b) != "<notification/>" {
			t.Fatalf("fetch %d: got %q, %v", i, b, err)
		}
	}
	if len(remotes) != 1 {
		t.Errorf("5 sequential fetches came over %d connections, want 1", len(remotes))
	}
}

// TestPhaseTimeouts: the Transport's phase deadlines end a fetch stuck in
// that phase, as ErrTimeout, although the kind's whole-fetch timeout is
// far away.
func TestPhaseTimeouts(t *testing.T) {
	addr, _ := rp.SilentOrigin(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		url  string
		says string // net/http's words for the phase
	}{
		{"tls handshake", Config{TLSHandshakeTimeout: 100 * time.Millisecond, NotificationTimeout: time.Hour}, "https://" + addr + "/n.xml", "TLS handshake timeout"},
		{"response headers", Config{HeaderTimeout: 100 * time.Millisecond, NotificationTimeout: time.Hour}, "http://" + addr + "/n.xml", "awaiting response headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.cfg)
			_, err := c.Fetch(context.Background(), Request{URL: tc.url})
			wantErr(t, err, ErrTimeout)
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want the %s phase's timeout (%q)", err, tc.name, tc.says)
			}
		})
	}
}
