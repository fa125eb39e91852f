package proxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOps(t *testing.T) {
	e := newEnv(t, ModeMirror)
	t.Run("readyz before the first head", func(t *testing.T) {
		resp, body := e.get("GET", "/readyz")
		if resp.StatusCode != 503 || !strings.Contains(string(body), "test") {
			t.Errorf("got %d %q, want 503 naming the repository", resp.StatusCode, body)
		}
		resp, _ = e.get("GET", e.path("notification.xml"))
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("notification before the first head: got %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	h := e.sync()
	e.get("GET", e.path("notification.xml"))
	e.get("GET", e.path("notification.bin"))
	snap := fileOf(t, h, "snapshot", "xml")
	e.get("GET", e.path(snap.Path))

	t.Run("readyz after", func(t *testing.T) {
		if resp, body := e.get("GET", "/readyz"); resp.StatusCode != 200 {
			t.Errorf("got %d %q, want 200", resp.StatusCode, body)
		}
		if resp, _ := e.get("GET", "/healthz"); resp.StatusCode != 200 {
			t.Errorf("healthz: got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, body := e.get("GET", "/metrics")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		m := parseMetrics(t, string(body))
		for series, min := range map[string]float64{
			`rrdp_proxy_requests_total{repo="test",kind="notification",format="xml",code="200"}`: 1,
			`rrdp_proxy_requests_total{repo="test",kind="notification",format="bin",code="200"}`: 1,
			`rrdp_proxy_requests_total{repo="test",kind="snapshot",format="xml",code="200"}`:     1,
			`rrdp_proxy_requests_total{repo="test",kind="notification",format="xml",code="503"}`: 1,
			`rrdp_proxy_response_bytes_total{repo="test"}`:                                       float64(len(h.NotificationXML) + len(h.NotificationBin) + int(snap.Size)),
			`rrdp_proxy_state_serial{repo="test"}`:                                               float64(h.Serial),
			`rrdp_proxy_state_ready{repo="test"}`:                                                1,
			`rrdp_proxy_follow_syncs_total{repo="test"}`:                                         1,
			`rrdp_proxy_follow_errors_total{repo="test",kind="sync"}`:                            0,
			`rrdp_proxy_cache_hits_total`:                                                        1,
			`rrdp_proxy_cache_pinned_bytes`:                                                      float64(snap.Size),
		} {
			v, ok := m[series]
			if !ok || v < min {
				t.Errorf("%s: got %v (present %v), want at least %v", series, v, ok, min)
			}
		}
	})
	t.Run("status.json", func(t *testing.T) {
		resp, body := e.get("GET", "/status.json")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		var rep struct {
			Ready bool `json:"ready"`
			Repos []struct {
				Name            string `json:"name"`
				Serial          uint64 `json:"serial"`
				Session         string `json:"session"`
				SnapshotXML     int64  `json:"snapshot_xml_bytes"`
				SnapshotBin     int64  `json:"snapshot_bin_bytes"`
				NotificationXML string `json:"notification_xml"`
				Requests        uint64 `json:"requests"`
			} `json:"repos"`
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		if !rep.Ready || len(rep.Repos) != 1 || rep.Repos[0].Serial != h.Serial || rep.Repos[0].Session != h.Session ||
			rep.Repos[0].SnapshotXML != snap.Size || rep.Repos[0].SnapshotBin == 0 || rep.Repos[0].NotificationXML != e.base+"notification.xml" ||
			rep.Repos[0].Requests < 3 {
			t.Errorf("got %+v, want ready, serial %d, snapshot %d bytes, 3 requests or more", rep, h.Serial, snap.Size)
		}
	})
	t.Run("status", func(t *testing.T) {
		resp, body := e.get("GET", "/status")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "test") ||
			!strings.Contains(string(body), e.base+"notification.xml") {
			t.Errorf("got %d %s %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("index.json", func(t *testing.T) {
		_, body := e.get("GET", "/index.json")
		var idx struct {
			Repos []IndexEntry `json:"repositories"`
		}
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatal(err)
		}
		want := IndexEntry{Name: "test", Mode: ModeMirror, Origin: e.notif, NotificationXML: e.base + "notification.xml",
			NotificationBin: e.base + "notification.bin", Serial: h.Serial, Session: h.Session}
		if len(idx.Repos) != 1 || idx.Repos[0] != want {
			t.Errorf("got %+v, want %+v", idx.Repos, want)
		}
		host := strings.TrimPrefix(e.origin.URL(), "https://")
		if !strings.HasPrefix(e.base, "https://"+e.addr+"/"+host+"rrdp/") {
			t.Errorf("mirror base %s: want https://%s/%srrdp/", e.base, e.addr, host)
		}
	})
	t.Run("mirror notification names the mirror", func(t *testing.T) {
		_, body := e.get("GET", e.path("notification.xml"))
		if !strings.Contains(string(body), `uri="`+e.base+h.Session+"/") || strings.Contains(string(body), e.origin.URL()) {
			t.Errorf("mirror notification: want every file at %s, none at the origin %s:\n%s", e.base, e.origin.URL(), body)
		}
		resp, body := e.get("GET", e.path(snap.Path))
		if resp.StatusCode != 200 || int64(len(body)) != snap.Size {
			t.Errorf("mirror snapshot: got %d with %d bytes", resp.StatusCode, len(body))
		}
	})
	t.Run("set repos", func(t *testing.T) {
		if err := e.srv.SetRepos(nil); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.get("GET", e.path("notification.xml")); resp.StatusCode != 404 {
			t.Errorf("removed repository: got %d, want 404", resp.StatusCode)
		}
		dup := []Repo{{Name: "a", Origin: e.notif, Mode: ModeMirror, Base: e.base}, {Name: "b", Origin: e.notif, Mode: ModeMirror, Base: e.base}}
		if err := e.srv.SetRepos(dup); err == nil {
			t.Errorf("two repositories on one route: got no error")
		}
		if err := e.srv.SetRepos([]Repo{{Name: "test", Origin: e.notif, Mode: ModeMirror, Base: e.base}}); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.get("GET", e.path("notification.xml")); resp.StatusCode != 200 {
			t.Errorf("added back: got %d, want 200", resp.StatusCode)
		}
	})
}

// parseMetrics reads the Prometheus text format: every line is a comment
// or "series value".
func parseMetrics(t *testing.T, s string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: not a sample", line)
		}
		m[line[:i]] = v
	}
	return m
}

func TestBaseURI(t *testing.T) {
	tests := []struct {
		mode           Mode
		origin, public string
		want           string
		err            bool
	}{
		{ModeReverse, "https://rrdp.example.net/rrdp/notification.xml", "", "https://rrdp.example.net/rrdp/", false},
		{ModeReverse, "https://RRDP.example.net:8443/notification.xml", "", "https://rrdp.example.net:8443/", false},
		{ModeReverse, "https://rrdp.example.net/a/b/notification.xml", "https://edge.example.org", "https://edge.example.org/a/b/", false},
		{ModeMirror, "https://rrdp.example.net/rrdp/notification.xml", "https://mirror.example.org/", "https://mirror.example.org/rrdp.example.net/rrdp/", false},
		{ModeMirror, "https://localhost:3000/rrdp/notification.xml", "https://m.example/pre/", "https://m.example/pre/localhost:3000/rrdp/", false},
		{ModeMirror, "https://rrdp.example.net/rrdp/notification.xml", "", "", true},
		{ModeReverse, "rsync://rrdp.example.net/x", "", "", true},
		{"other", "https://rrdp.example.net/notification.xml", "", "", true},
	}
	for _, tt := range tests {
		got, err := BaseURI(tt.mode, tt.origin, tt.public)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("BaseURI(%s, %s, %q): got %q, %v; want %q, error %v", tt.mode, tt.origin, tt.public, got, err, tt.want, tt.err)
		}
	}
}

// TestShutdown checks that a request under way finishes while new
// connections are refused.
func TestShutdown(t *testing.T) {
	e := newEnv(t, ModeReverse)
	h := e.sync()
	snap := fileOf(t, h, "snapshot", "xml")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A request whose headers are not complete yet: the connection is
	// busy, not idle.
	if _, err := c.Write([]byte("GET " + e.path(snap.Path) + " HTTP/1.1\r\nHost: " + e.addr + "\r\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	// Wait until the listener is closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c2, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			break
		}
		c2.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open 10s after Shutdown")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if _, err := c.Write([]byte("Connection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp := b.String()
	if !strings.HasPrefix(resp, "HTTP/1.1 200") || !strings.Contains(resp, "Content-Length: "+strconv.FormatInt(snap.Size, 10)) ||
		len(resp) < int(snap.Size) {
		t.Errorf("request under way during shutdown: got %d bytes %.80q, want the snapshot", len(resp), resp)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestShutdownDeadline checks that connections still busy when
// Shutdown's context ends are closed.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err == nil {
		t.Errorf("shutdown with a request under way past the deadline: got no error")
	}
	// The server's ReadTimeout is 10s: a close within 5s is Shutdown's.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); n != 0 || err == nil || (ok && ne.Timeout()) {
		t.Errorf("connection after the shutdown deadline: got %d bytes, %v; want it closed", n, err)
	}
}

// TestAccessLog checks the debug log of requests.
func TestAccessLog(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	var buf syncBuffer
	srv, err := New(Config{Cache: e.cache, Repos: []Repo{{Name: "test", Origin: e.notif, Base: e.base}},
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := request(e, e.path("notification.xml"))
	srv.Handler()(ctx)
	if got := buf.String(); !strings.Contains(got, "msg=request method=GET") || !strings.Contains(got, "path="+e.path("notification.xml")+" status=200") {
		t.Errorf("log: got %q, want the request with its status", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnLimits checks MaxConnsPerIP and MaxConns: a connection over a
// limit is answered 429 or 503 and closed.
func TestConnLimits(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	for _, tt := range []struct {
		name   string
		cfg    Config
		status string
	}{
		{"per ip", Config{MaxConnsPerIP: 1}, "HTTP/1.1 429"},
		{"total", Config{MaxConns: 1}, "HTTP/1.1 503"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Cache, cfg.Repos = e.cache, []Repo{{Name: "test", Origin: e.notif, Base: e.base}}
			srv, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(ctx)
				<-done
			}()
			req := "GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n\r\n"
			first, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			// A served request proves the first connection is counted.
			if got := roundTrip(t, first, req); !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Fatalf("first connection: got %.40q, want 200", got)
			}
			second, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer second.Close()
			if got := roundTrip(t, second, req); !strings.HasPrefix(got, tt.status) {
				t.Errorf("second connection: got %.60q, want %s", got, tt.status)
			}
		})
	}
}

// roundTrip writes req on c and returns what arrives within 5s, up to
// the end of the first response's headers.
func roundTrip(t *testing.T, c net.Conn, req string) string {
	t.Helper()
	if _, err := c.Write([]byte(req)); err != nil {
		return "write: " + err.Error()
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(b), "\r\n\r\n") {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b)
}

// TestTimeouts checks that a client slow to send its request, or idle
// after one, is disconnected.
func TestTimeouts(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	srv, err := New(Config{Cache: e.cache, Repos: []Repo{{Name: "test", Origin: e.notif, Base: e.base}},
		ReadTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}()
	closed := func(c net.Conn) error {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64<<10)
		for {
			_, err := c.Read(buf)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return err // still open after 5s
			}
			if err != nil {
				return nil
			}
		}
	}
	for _, tt := range []struct{ name, req string }{
		{"read", "GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n"},
		{"idle", "GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tt.req)); err != nil {
				t.Fatal(err)
			}
			if err := closed(c); err != nil {
				t.Errorf("connection not closed by the server: %v", err)
			}
		})
	}
}
