package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tracker knows the open connections a Server accepted and whether each
// carried a byte of a request (above TLS), so that Shutdown can close the
// ones a client opened and never used.
type tracker struct {
	mu    sync.Mutex
	conns map[unused]struct{}
}

// unused is a tracked connection.
type unused interface {
	used() bool
	accepted() time.Time
	Close() error
}

func (t *tracker) add(c unused) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = make(map[unused]struct{})
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
}

func (t *tracker) remove(c unused) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// unusedAfter is how long an accepted connection may stay without a
// request byte before Shutdown counts it unused: a request already sent
// on a connection just accepted is read within it.
const unusedAfter = 500 * time.Millisecond

// closeUnused closes the connections that never carried a request byte
// and were accepted more than unusedAfter ago.
func (t *tracker) closeUnused() {
	t.mu.Lock()
	var idle []unused
	for c := range t.conns {
		if !c.used() && time.Since(c.accepted()) > unusedAfter {
			idle = append(idle, c)
		}
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// trackListener wraps the connections it accepts for its tracker.
type trackListener struct {
	net.Listener
	t *tracker
}

func (l trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*tls.Conn); ok {
		// Embedding *tls.Conn keeps fasthttp's IsTLS and
		// TLSConnectionState working.
		w := &trackedTLSConn{Conn: tc, t: l.t, at: time.Now()}
		l.t.add(w)
		return w, nil
	}
	w := &trackedConn{Conn: c, t: l.t, at: time.Now()}
	l.t.add(w)
	return w, nil
}

// trackedConn is a plain connection that records whether a byte was read.
type trackedConn struct {
	net.Conn
	t    *tracker
	at   time.Time
	read atomic.Bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.read.Load() {
		c.read.Store(true)
	}
	return n, err
}

func (c *trackedConn) used() bool          { return c.read.Load() }
func (c *trackedConn) accepted() time.Time { return c.at }

func (c *trackedConn) Close() error {
	c.t.remove(c)
	return c.Conn.Close()
}

// trackedTLSConn is a TLS connection that records whether a byte of
// application data was read (the handshake does not count).
type trackedTLSConn struct {
	*tls.Conn
	t    *tracker
	at   time.Time
	read atomic.Bool
}

func (c *trackedTLSConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.read.Load() {
		c.read.Store(true)
	}
	return n, err
}

func (c *trackedTLSConn) used() bool          { return c.read.Load() }
func (c *trackedTLSConn) accepted() time.Time { return c.at }

func (c *trackedTLSConn) Close() error {
	c.t.remove(c)
	return c.Conn.Close()
}
