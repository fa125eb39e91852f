package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// seen records what a server was asked: Host header, path, TLS server
// name.
type seen struct {
	mu    sync.Mutex
	hosts []string
	paths []string
	sni   []string
}

func (s *seen) handler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hosts = append(s.hosts, r.Host)
	s.paths = append(s.paths, r.URL.RequestURI())
	if r.TLS != nil {
		s.sni = append(s.sni, r.TLS.ServerName)
	}
	s.mu.Unlock()
	switch r.URL.Path {
	case "/rrdp/old.xml":
		http.Redirect(w, r, "/rrdp/notification.xml", http.StatusFound)
	case "/rrdp/internal.xml":
		// An absolute Location naming the internal address: it leaves
		// the public origin.
		http.Redirect(w, r, "http://"+r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()+"/rrdp/notification.xml", http.StatusFound)
	default:
		w.Write([]byte("from " + r.Host + " " + r.URL.Path))
	}
}

func (s *seen) get() (hosts, paths, sni []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hosts...), append([]string(nil), s.paths...), append([]string(nil), s.sni...)
}

// TestFetchFromHTTP: with an http FetchFrom, requests for
// https://rrdp.example.net/... reach the FetchFrom server with the public
// Host header, redirects within the public origin are followed through
// it, Response.URL stays public, and a Location naming the internal
// address is refused as another origin.
func TestFetchFromHTTP(t *testing.T) {
	var back seen
	srv := httptest.NewServer(http.HandlerFunc(back.handler))
	defer srv.Close()
	c := newClient(t, Config{Origin: "https://rrdp.example.net/rrdp/notification.xml", FetchFrom: srv.URL})

	t.Run("public host kept", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: "https://rrdp.example.net/rrdp/notification.xml?x=1"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), "from rrdp.example.net /rrdp/notification.xml"; got != want {
			t.Errorf("got body %q, want %q", got, want)
		}
		if r.URL != "https://rrdp.example.net/rrdp/notification.xml?x=1" {
			t.Errorf("got Response.URL %q, want the public URL", r.URL)
		}
		hosts, paths, _ := back.get()
		if len(hosts) != 1 || hosts[0] != "rrdp.example.net" || paths[0] != "/rrdp/notification.xml?x=1" {
			t.Errorf("the FetchFrom server saw hosts %q paths %q, want rrdp.example.net and /rrdp/notification.xml?x=1", hosts, paths)
		}
	})
	t.Run("explicit default port is the same origin", func(t *testing.T) {
		_, b, err := get(t, c, Request{URL: "https://RRDP.example.net:443/rrdp/a.xml"})
		if err != nil || string(b) != "from RRDP.example.net:443 /rrdp/a.xml" {
			t.Fatalf("got %q, %v; want the FetchFrom server's answer with the Host as written", b, err)
		}
	})
	t.Run("same-origin redirect followed through fetch_from", func(t *testing.T) {
		r, b, err := get(t, c, Request{URL: "https://rrdp.example.net/rrdp/old.xml"})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "from rrdp.example.net /rrdp/notification.xml" || r.URL != "https://rrdp.example.net/rrdp/notification.xml" {
			t.Errorf("got %q from %s, want the notification from its public URL", b, r.URL)
		}
	})
	t.Run("redirect to the internal address refused", func(t *testing.T) {
		_, _, err := get(t, c, Request{URL: "https://rrdp.example.net/rrdp/internal.xml"})
		wantErr(t, err, ErrRedirect)
	})
}

// TestFetchFromOtherOrigins: only the public origin is sent to FetchFrom;
// another host, or the same host on another port or scheme, goes where
// its URL says. The public origin is a real server here too, so that a
// request wrongly left on its own way would be seen.
func TestFetchFromOtherOrigins(t *testing.T) {
	var pub, back seen
	public := httptest.NewServer(http.HandlerFunc(pub.handler))
	defer public.Close()
	backend := httptest.NewServer(http.HandlerFunc(back.handler))
	defer backend.Close()
	port := public.URL[strings.LastIndexByte(public.URL, ':')+1:]
	c := newClient(t, Config{Origin: public.URL + "/rrdp/notification.xml", FetchFrom: backend.URL + "/"})

	for _, tc := range []struct {
		name, url string
		want      *seen
	}{
		{"the public origin", public.URL + "/rrdp/n.xml", &back},
		{"another host name for the same address", "http://localhost:" + port + "/rrdp/n.xml", &pub},
		{"the FetchFrom address itself", backend.URL + "/rrdp/n.xml", &back},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, hb, _ := back.get()
			_, hp, _ := pub.get()
			if _, _, err := get(t, c, Request{URL: tc.url}); err != nil {
				t.Fatal(err)
			}
			_, ab, _ := back.get()
			_, ap, _ := pub.get()
			gotBack, gotPub := len(ab)-len(hb), len(ap)-len(hp)
			wantBack, wantPub := 1, 0
			if tc.want == &pub {
				wantBack, wantPub = 0, 1
			}
			if gotBack != wantBack || gotPub != wantPub {
				t.Errorf("requests: FetchFrom server %d, public server %d; want %d and %d", gotBack, gotPub, wantBack, wantPub)
			}
		})
	}
}

// TestFetchFromHTTPS: an https FetchFrom is reached at its address, while
// the TLS server name is the public host and the certificate must be
// valid for it; HTTP/2 is used when offered.
func TestFetchFromHTTPS(t *testing.T) {
	const public = "https://rrdp.example.net/rrdp/notification.xml"
	start := func(t *testing.T, hosts []string) (*httptest.Server, *seen, []byte) {
		pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(pki.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		s := &seen{}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(s.handler))
		srv.TLS = pki.ServerTLS()
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv, s, ca
	}

	t.Run("certificate for the public name", func(t *testing.T) {
		srv, s, ca := start(t, []string{"rrdp.example.net"})
		c := newClient(t, Config{CAPEM: ca, Origin: public, FetchFrom: srv.URL})
		r, b, err := get(t, c, Request{URL: public})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "from rrdp.example.net /rrdp/notification.xml" {
			t.Errorf("got %q", b)
		}
		if r.Proto != "HTTP/2.0" {
			t.Errorf("got proto %q, want HTTP/2.0", r.Proto)
		}
		if _, _, sni := s.get(); len(sni) != 1 || sni[0] != "rrdp.example.net" {
			t.Errorf("the server saw TLS server names %q, want rrdp.example.net", sni)
		}
	})
	t.Run("certificate for the address only refused", func(t *testing.T) {
		srv, _, ca := start(t, nil) // localhost, 127.0.0.1, ::1
		c := newClient(t, Config{CAPEM: ca, Origin: public, FetchFrom: srv.URL})
		_, _, err := get(t, c, Request{URL: public})
		if err == nil || !strings.Contains(err.Error(), "rrdp.example.net") {
			t.Fatalf("got %v, want a certificate error naming rrdp.example.net", err)
		}
	})
	t.Run("plain http origin through https fetch_from", func(t *testing.T) {
		srv, s, ca := start(t, []string{"rrdp.example.net"})
		c := newClient(t, Config{CAPEM: ca, Origin: "http://rrdp.example.net/rrdp/notification.xml", FetchFrom: srv.URL})
		if _, _, err := get(t, c, Request{URL: "http://rrdp.example.net/rrdp/notification.xml"}); err != nil {
			t.Fatal(err)
		}
		if hosts, _, sni := s.get(); len(sni) != 1 || sni[0] != "rrdp.example.net" || hosts[0] != "rrdp.example.net" {
			t.Errorf("the server saw hosts %q and TLS server names %q, want rrdp.example.net", hosts, sni)
		}
	})
}

func TestFetchFromConfig(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"http://10.0.0.5:8081", true},
		{"https://origin.internal", true},
		{"http://[fd00::5]:8081/", true},
		{"HTTP://Origin.Internal:80", true},
		{"ftp://10.0.0.5", false},
		{"10.0.0.5:8081", false},
		{"http://", false},
		{"http://:8081", false},
		{"http://user@10.0.0.5", false},
		{"http://10.0.0.5/rrdp", false},
		{"http://10.0.0.5?x=1", false},
		{"http://10.0.0.5#f", false},
		{"http://10.0.0.5:0", false},
		{"http://10.0.0.5:70000", false},
		{"http://10.0.0.5:", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			err := CheckFetchFrom(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckFetchFrom: got %v, want ok %v", err, tc.ok)
			}
			_, nerr := New(Config{Origin: "https://rrdp.example.net/notification.xml", FetchFrom: tc.in})
			if (nerr == nil) != tc.ok {
				t.Fatalf("New: got %v, want ok %v", nerr, tc.ok)
			}
		})
	}
	if _, err := New(Config{FetchFrom: "http://10.0.0.5"}); err == nil {
		t.Error("New: got no error for a FetchFrom without Origin")
	}
	if _, err := New(Config{Origin: "rsync://rrdp.example.net/x", FetchFrom: "http://10.0.0.5"}); err == nil {
		t.Error("New: got no error for a FetchFrom with an rsync Origin")
	}
}
