package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	// busy, not idle, once the server read its first bytes.
	if _, err := c.Write([]byte("GET " + e.path(snap.Path) + " HTTP/1.1\r\nHost: " + e.addr + "\r\n")); err != nil {
		t.Fatal(err)
	}
	waitActive(t, e.srv)
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
	waitActive(t, e.srv)
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
			var conns []net.Conn
			defer func() {
				// fasthttp 1.74's per-IP connections race between Close
				// in Shutdown and their own Read (go test -race): let
				// them end first.
				for _, c := range conns {
					c.Close()
				}
				waitConns(t, srv, 0)
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
			conns = append(conns, first)
			// A served request proves the first connection is counted.
			if got := roundTrip(t, first, req); !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Fatalf("first connection: got %.40q, want 200", got)
			}
			second, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, second)
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

// waitActive waits until the server reads a request on a connection.
func waitActive(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// fasthttp marks a connection active from its accept, before it
		// reads a byte: what counts is the tracker's record of a byte
		// read, which is also what keeps Shutdown from closing it as
		// unused.
		s.tracked.mu.Lock()
		active := 0
		for c := range s.tracked.conns {
			if c.used() {
				active++
			}
		}
		s.tracked.mu.Unlock()
		if active > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no active connection after 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// waitConns waits until the server has n connections open.
func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.connMu.Lock()
		open := len(s.conns)
		s.connMu.Unlock()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after 10s, want %d", open, n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestShutdownUnusedConns: connections a client opened (and, over TLS,
// shook hands on) but never sent a request on do not hold Shutdown until
// the ReadTimeout: Shutdown closes them and returns before its deadline,
// well below the 10s ReadTimeout.
func TestShutdownUnusedConns(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode tlsMode
	}{{"plain", tlsNone}, {"tls files", tlsFiles}, {"tls config", tlsConfig}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnvTLS(t, ModeReverse, tt.mode)
			e.sync()
			var conns []net.Conn
			for range 4 {
				var c net.Conn
				var err error
				if tt.mode == tlsNone {
					c, err = net.Dial("tcp", e.addr)
				} else {
					conf := e.pki.ClientTLS()
					conf.ServerName = "127.0.0.1"
					tc, terr := tls.Dial("tcp", e.addr, conf)
					if terr == nil {
						terr = tc.Handshake()
					}
					c, err = tc, terr
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns = append(conns, c)
			}
			// A request on another connection completes, so that the
			// server has served something.
			busy := conns[len(conns)-1]
			conns = conns[:len(conns)-1]
			if _, err := busy.Write([]byte("GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			busy.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b := make([]byte, 12); func() bool { _, err := io.ReadFull(busy, b); return err != nil || string(b) != "HTTP/1.1 200" }() {
				t.Fatalf("request on a kept-alive connection: got %q", b)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.srv.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown with %d unused connections open: %v", len(conns), err)
			}
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.Read(make([]byte, 1)); err == nil {
					t.Errorf("unused connection %d after shutdown: read %d bytes, want it closed", i, n)
				}
			}
		})
	}
}
