package upstream

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, c *Client, req Request) (*Response, []byte, error) {
	t.Helper()
	r, err := c.Fetch(context.Background(), req)
	if err != nil {
		return nil, nil, err
	}
	b, err := r.ReadAll()
	return r, b, err
}

func wantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want %v", err, sentinel)
	}
	var ue *Error
	if !errors.As(err, &ue) || ue.URL == "" || ue.Op == "" {
		t.Fatalf("got %T %v, want an *Error with Op and URL", err, err)
	}
}

func TestFetchBasics(t *testing.T) {
	body := []byte(strings.Repeat("<notification/>", 100))
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua = r.UserAgent()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` && r.Header.Get("If-Modified-Since") == "Mon, 02 Jan 2006 15:04:05 GMT" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		w.Write(body)
	}))
	defer srv.Close()
	c := newClient(t, Config{UserAgent: "rrdp-proxy/test-1"})

	t.Run("200", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: srv.URL + "/n.xml"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 || !bytes.Equal(b, body) {
			t.Fatalf("got status %d and %d bytes, want 200 and %d", r.Status, len(b), len(body))
		}
		if got, want := r.Body.Sum(), sha256.Sum256(body); got != want {
			t.Errorf("got sum %x, want %x", got, want)
		}
		if r.ETag != `"v1"` || r.LastModified != "Mon, 02 Jan 2006 15:04:05 GMT" {
			t.Errorf("got ETag %q Last-Modified %q", r.ETag, r.LastModified)
		}
		if ua != "rrdp-proxy/test-1" {
			t.Errorf("server saw User-Agent %q, want rrdp-proxy/test-1", ua)
		}
	})
	t.Run("304", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: srv.URL + "/n.xml", ETag: `"v1"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 304 || len(b) != 0 {
			t.Fatalf("got status %d and %d bytes, want 304 and none", r.Status, len(b))
		}
	})
	t.Run("404", func(t *testing.T) {
		_, _, err := get(t, c, Request{URL: srv.URL + "/missing"})
		wantErr(t, err, ErrStatus)
	})
	t.Run("default user agent", func(t *testing.T) {
		c := newClient(t, Config{})
		if _, _, err := get(t, c, Request{URL: srv.URL + "/n.xml"}); err != nil {
			t.Fatal(err)
		}
		if ua != "rrdp-proxy" {
			t.Errorf("server saw User-Agent %q, want rrdp-proxy", ua)
		}
	})
}

func TestSizeCaps(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 100<<10)
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	var small bytes.Buffer
	zw = gzip.NewWriter(&small)
	zw.Write(big[:1000])
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write(big)
		case "/chunked":
			for i := 0; i < 100; i++ {
				w.Write(big[:1024])
				w.(http.Flusher).Flush()
			}
		case "/bomb":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(small.Bytes())
		case "/badgzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("not gzip at all"))
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{MaxNotificationSize: 10 << 10, MaxDeltaSize: 1 << 20})

	for _, tc := range []struct {
		name string
		path string
		kind rrdpxml.Kind
		want error
	}{
		{"content-length over cap", "/big", rrdpxml.KindNotification, ErrTooLarge},
		{"chunked over cap", "/chunked", rrdpxml.KindNotification, ErrTooLarge},
		{"gzip bomb", "/bomb", rrdpxml.KindDelta, ErrTooLarge},
		{"bad gzip", "/badgzip", rrdpxml.KindDelta, ErrGzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := get(t, c, Request{URL: srv.URL + tc.path, Kind: tc.kind})
			wantErr(t, err, tc.want)
		})
	}
	t.Run("under the cap of another kind", func(t *testing.T) {
		_, b, err := get(t, c, Request{URL: srv.URL + "/big", Kind: rrdpxml.KindDelta})
		if err != nil || len(b) != len(big) {
			t.Fatalf("got %d bytes, %v; want %d bytes", len(b), err, len(big))
		}
	})
	t.Run("gzip decoded", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: srv.URL + "/gzip"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, big[:1000]) || r.Body.Sum() != sha256.Sum256(big[:1000]) {
			t.Fatalf("got %d bytes, want the 1000 decoded bytes and their sum", len(b))
		}
	})
}

func TestSlowOrigins(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loris":
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-release:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		case "/silent":
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	t.Run("slow loris cut by the rate floor", func(t *testing.T) {
		c := newClient(t, Config{MinRate: 1000, RateWindow: 100 * time.Millisecond})
		_, _, err := get(t, c, Request{URL: srv.URL + "/loris", Kind: rrdpxml.KindSnapshot})
		wantErr(t, err, ErrTooSlow)
	})
	t.Run("slow loris cut by the deadline", func(t *testing.T) {
		c := newClient(t, Config{MinRate: -1, SnapshotTimeout: 200 * time.Millisecond})
		_, _, err := get(t, c, Request{URL: srv.URL + "/loris", Kind: rrdpxml.KindSnapshot})
		wantErr(t, err, ErrTimeout)
	})
	t.Run("no headers", func(t *testing.T) {
		c := newClient(t, Config{HeaderTimeout: 100 * time.Millisecond})
		_, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/silent", Kind: rrdpxml.KindSnapshot})
		wantErr(t, err, ErrTimeout)
	})
	t.Run("context cancelled during the body", func(t *testing.T) {
		c := newClient(t, Config{MinRate: -1})
		ctx, cancel := context.WithCancel(context.Background())
		r, err := c.Fetch(ctx, Request{URL: srv.URL + "/loris", Kind: rrdpxml.KindSnapshot})
		if err != nil {
			t.Fatal(err)
		}
		var one [1]byte
		if _, err := r.Body.Read(one[:]); err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = r.ReadAll()
		wantErr(t, err, context.Canceled)
	})
}

func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("elsewhere"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/target", http.StatusFound)
		case "/cross":
			http.Redirect(w, r, other.URL+"/target", http.StatusMovedPermanently)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
		case "/target":
			w.Write([]byte("here"))
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{})

	t.Run("same origin followed", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: srv.URL + "/same"})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "here" || r.URL != srv.URL+"/target" {
			t.Fatalf("got %q from %s, want \"here\" from %s/target", b, r.URL, srv.URL)
		}
	})
	for _, path := range []string{"/cross", "/loop"} {
		t.Run(path+" refused", func(t *testing.T) {
			_, _, err := get(t, c, Request{URL: srv.URL + path})
			wantErr(t, err, ErrRedirect)
		})
	}
}

func TestTLS(t *testing.T) {
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("secure"))
	}))
	srv.TLS = pki.ServerTLS()
	srv.StartTLS()
	defer srv.Close()
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("test CA accepted", func(t *testing.T) {
		c := newClient(t, Config{CAPEM: caPEM})
		_, b, err := get(t, c, Request{URL: srv.URL + "/x"})
		if err != nil || string(b) != "secure" {
			t.Fatalf("got %q, %v; want \"secure\"", b, err)
		}
	})
	t.Run("unknown CA refused", func(t *testing.T) {
		c := newClient(t, Config{})
		_, _, err := get(t, c, Request{URL: srv.URL + "/x"})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want a certificate error", err)
		}
	})
	t.Run("bad CAPEM", func(t *testing.T) {
		if _, err := New(Config{CAPEM: []byte("junk")}); err == nil {
			t.Fatal("got no error for a CAPEM without certificates")
		}
	})
}

func TestOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://Example.net/a/b", "https://example.net:443"},
		{"https://example.net:443/x", "https://example.net:443"},
		{"http://127.0.0.1:8080/n.xml", "http://127.0.0.1:8080"},
		{"rsync://example.net/x", ""},
		{"https://user@example.net/", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Origin(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}

}
