// Package upstream implements the HTTP client with which rrdp-proxy fetches
// RRDP files (RFC 8182) from origins: deadlines for connecting, for the
// response headers and for the whole body, a minimum transfer rate, a size
// cap per kind of file, capped gzip decompression, conditional GET on the
// notification, and redirects followed only within the same origin
// (RFC 9674).
package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Config tunes a Client. The zero value works: every zero field takes the
// default named in its comment.
type Config struct {
	// ConnectTimeout bounds the TCP connect (10s).
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers once the
	// request is sent (30s).
	HeaderTimeout time.Duration
	// NotificationTimeout, SnapshotTimeout and DeltaTimeout bound a whole
	// fetch of that kind of file, body included (1m, 30m, 5m).
	NotificationTimeout, SnapshotTimeout, DeltaTimeout time.Duration
	// MaxNotificationSize, MaxSnapshotSize and MaxDeltaSize cap the bytes
	// of a file of that kind, after decompression; the compressed bytes
	// are held to the same cap (16 MiB, 4 GiB, 512 MiB).
	MaxNotificationSize, MaxSnapshotSize, MaxDeltaSize int64
	// MinRate is the slowest transfer accepted, in bytes per second of
	// body, measured over every RateWindow (8 KiB/s over 10s). A negative
	// MinRate turns the check off.
	MinRate    int64
	RateWindow time.Duration
	// MaxRedirects caps the same-origin redirects followed (5).
	MaxRedirects int
	// UserAgent is sent with every request ("rrdp-proxy"); callers add
	// their version: "rrdp-proxy/1.2.3".
	UserAgent string
	// RootCAs are the CAs trusted for https origins; nil means the
	// system roots.
	RootCAs *x509.CertPool
	// CAPEM holds more CA certificates in PEM, trusted beside RootCAs (an
	// operator's internal CA). The caller reads the file.
	CAPEM []byte
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.HeaderTimeout, 30*time.Second)
	def(&c.NotificationTimeout, time.Minute)
	def(&c.SnapshotTimeout, 30*time.Minute)
	def(&c.DeltaTimeout, 5*time.Minute)
	def(&c.RateWindow, 10*time.Second)
	size := func(n *int64, v int64) {
		if *n == 0 {
			*n = v
		}
	}
	size(&c.MaxNotificationSize, 16<<20)
	size(&c.MaxSnapshotSize, 4<<30)
	size(&c.MaxDeltaSize, 512<<20)
	size(&c.MinRate, 8<<10)
	if c.MaxRedirects == 0 {
		c.MaxRedirects = 5
	}
	if c.UserAgent == "" {
		c.UserAgent = "rrdp-proxy"
	}
	return c
}

// limits returns the size cap and the whole-fetch timeout of a kind.
func (c *Config) limits(k rrdpxml.Kind) (int64, time.Duration) {
	switch k {
	case rrdpxml.KindSnapshot:
		return c.MaxSnapshotSize, c.SnapshotTimeout
	case rrdpxml.KindDelta:
		return c.MaxDeltaSize, c.DeltaTimeout
	}
	return c.MaxNotificationSize, c.NotificationTimeout
}

// Client fetches RRDP files from origins. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *fasthttp.Client

	mu    sync.Mutex
	conns map[string]*conn // by local address, to end the header phase
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.ConnectTimeout < 0 || cfg.HeaderTimeout < 0 || cfg.NotificationTimeout < 0 ||
		cfg.SnapshotTimeout < 0 || cfg.DeltaTimeout < 0 || cfg.RateWindow < 0 {
		return nil, errors.New("upstream: negative timeout")
	}
	if cfg.MaxNotificationSize < 0 || cfg.MaxSnapshotSize < 0 || cfg.MaxDeltaSize < 0 || cfg.MaxRedirects < 0 {
		return nil, errors.New("upstream: negative size cap or redirect count")
	}
	roots := cfg.RootCAs
	if len(cfg.CAPEM) > 0 {
		if roots == nil {
			sys, err := x509.SystemCertPool()
			if err != nil || sys == nil {
				sys = x509.NewCertPool()
			}
			roots = sys
		} else {
			roots = roots.Clone()
		}
		if !roots.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, errors.New("upstream: CAPEM holds no certificate")
		}
	}
	c := &Client{cfg: cfg, conns: make(map[string]*conn)}
	c.http = &fasthttp.Client{
		Name:                          cfg.UserAgent,
		Dial:                          c.dial,
		TLSConfig:                     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		StreamResponseBody:            true,
		ReadBufferSize:                16 << 10,
		MaxIdleConnDuration:           30 * time.Second,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		MaxConnsPerHost:               16,
		MaxConnWaitTimeout:            cfg.ConnectTimeout,
	}
	return c, nil
}

// Close closes the idle connections. Fetches under way are not cut.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// dial connects with ConnectTimeout and wraps the connection so that the
// wait for the response headers has its own deadline.
func (c *Client) dial(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.ConnectTimeout}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("connect %s: %w", addr, ErrTimeout)
		}
		return nil, err
	}
	w := &conn{Conn: nc, client: c, key: nc.LocalAddr().String()}
	c.mu.Lock()
	c.conns[w.key] = w
	c.mu.Unlock()
	return w, nil
}

// headersDone lifts the header deadline of the connection at local.
func (c *Client) headersDone(local net.Addr) {
	if local == nil {
		return
	}
	c.mu.Lock()
	w := c.conns[local.String()]
	c.mu.Unlock()
	if w != nil {
		w.headersDone()
	}
}

// conn shortens the read deadline fasthttp sets before it reads a
// response to HeaderTimeout, until headersDone restores it.
type conn struct {
	net.Conn
	client *Client
	key    string

	mu       sync.Mutex
	deadline time.Time // as fasthttp set it
	inHeader bool
	closed   bool
}

func (w *conn) SetReadDeadline(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline, w.inHeader = t, true
	eff := time.Now().Add(w.client.cfg.HeaderTimeout)
	if !t.IsZero() && t.Before(eff) {
		eff = t
	}
	return w.Conn.SetReadDeadline(eff)
}

func (w *conn) headersDone() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inHeader && !w.closed {
		w.inHeader = false
		_ = w.Conn.SetReadDeadline(w.deadline)
	}
}

func (w *conn) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.client.mu.Lock()
	if w.client.conns[w.key] == w {
		delete(w.client.conns, w.key)
	}
	w.client.mu.Unlock()
	return w.Conn.Close()
}
