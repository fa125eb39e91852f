// Package upstream implements the HTTP client with which rrdp-proxy fetches
// RRDP files (RFC 8182) from origins, on net/http: a context that cancels
// every phase (connect, TLS, headers, body), deadlines for connecting, for
// the TLS handshake, for the response headers and for the whole fetch, a
// minimum transfer rate, a size cap per kind of file on the compressed and
// on the decompressed bytes, gzip decoded here under that cap, HTTP/2 where
// the origin offers it, conditional GET, redirects followed only within the
// same origin (RFC 9674), the SHA-256 of the body computed as it streams,
// and fetch_from: the requests for a public origin sent to the address
// where it really is.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Config tunes a Client. The zero value works: every zero field takes the
// default named in its comment.
type Config struct {
	// ConnectTimeout bounds the TCP connect (10s).
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (10s).
	TLSHandshakeTimeout time.Duration
	// HeaderTimeout bounds the wait for the response headers once the
	// request is sent (30s).
	HeaderTimeout time.Duration
	// IdleTimeout is how long an idle kept-alive connection to an origin
	// stays open for the next fetch (90s).
	IdleTimeout time.Duration
	// NotificationTimeout, SnapshotTimeout and DeltaTimeout bound a whole
	// fetch of that kind of file, redirects and body included (1m, 30m,
	// 5m).
	NotificationTimeout, SnapshotTimeout, DeltaTimeout time.Duration
	// MaxNotificationSize, MaxSnapshotSize and MaxDeltaSize cap the bytes
	// of a file of that kind, after decompression; the compressed bytes
	// are held to the same cap (16 MiB, 4 GiB, 512 MiB).
	MaxNotificationSize, MaxSnapshotSize, MaxDeltaSize int64
	// MinRate is the slowest transfer accepted, in bytes per second of
	// body as it comes over the wire, measured over every RateWindow
	// (8 KiB/s over 10s). A negative MinRate turns the check off.
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
	// Origin and FetchFrom send the requests for one public origin to the
	// address where it really is (a publication server on an internal
	// network, behind rrdp-proxy under its public name). Origin is a URL
	// whose origin (RFC 6454: scheme, host and port) is the one relying
	// parties see; the repository's notification URL will do.
	// FetchFrom is "scheme://host[:port]", no path
	// ("http://10.0.0.5:8081"): every request whose URL has Origin's
	// origin, redirects included, connects there instead. The Host header
	// stays Origin's host, and for an https FetchFrom so do the TLS server
	// name and the name the certificate must be valid for; a plain http
	// FetchFrom is accepted, even for an https Origin (a private link).
	// URLs, same-origin checks and Response.URL stay the public ones, and
	// requests for other origins go where their URL says. Empty FetchFrom
	// changes nothing; FetchFrom needs Origin.
	Origin, FetchFrom string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.TLSHandshakeTimeout, 10*time.Second)
	def(&c.HeaderTimeout, 30*time.Second)
	def(&c.IdleTimeout, 90*time.Second)
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
	cfg Config
	tr  *http.Transport // every origin but the one FetchFrom stands for

	// With FetchFrom: public is the origin it stands for, ff the transport
	// whose every connection goes to ffAddr, and ffScheme and ffPort what
	// the requests for public are rewritten to (ffScheme decides TLS).
	public           string
	ff               *http.Transport
	ffScheme, ffPort string
	ffAddr           string
}

// maxConnsPerHost caps the connections to one origin: a follower fetches
// a few deltas at once, and pull-through fetches are single-flight.
const maxConnsPerHost = 16

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.ConnectTimeout < 0 || cfg.TLSHandshakeTimeout < 0 || cfg.HeaderTimeout < 0 || cfg.IdleTimeout < 0 ||
		cfg.NotificationTimeout < 0 || cfg.SnapshotTimeout < 0 || cfg.DeltaTimeout < 0 || cfg.RateWindow < 0 {
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
	c := &Client{cfg: cfg}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	c.tr = c.transport(roots, dialer.DialContext)
	if cfg.FetchFrom != "" {
		if cfg.Origin == "" {
			return nil, fmt.Errorf("upstream: fetch_from %q without the origin it stands for", cfg.FetchFrom)
		}
		public, err := parseOrigin(cfg.Origin)
		if err != nil {
			return nil, fmt.Errorf("upstream: origin: %w", err)
		}
		scheme, host, port, err := parseFetchFrom(cfg.FetchFrom)
		if err != nil {
			return nil, fmt.Errorf("upstream: fetch_from: %w", err)
		}
		c.public, c.ffScheme, c.ffPort, c.ffAddr = public, scheme, port, net.JoinHostPort(host, port)
		c.ff = c.transport(roots, func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, c.ffAddr)
		})
	}
	return c, nil
}

// transport returns a Transport with the phases of c.cfg that dials with
// dial. Accept-Encoding and gzip are the client's (DisableCompression), so
// that the decompressed bytes are capped; a custom TLS configuration and
// dialer would turn HTTP/2 off without ForceAttemptHTTP2. No proxy from
// the environment: origins are fetched directly, as before the move to
// net/http.
func (c *Client) transport(roots *x509.CertPool, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		DialContext:            dial,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    c.cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  c.cfg.HeaderTimeout,
		IdleConnTimeout:        c.cfg.IdleTimeout,
		MaxConnsPerHost:        maxConnsPerHost,
		MaxIdleConnsPerHost:    maxConnsPerHost,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		// A dead HTTP/2 connection carries every stream to its origin:
		// ping it when it has been silent, and drop it without an answer.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
}

// Close closes the idle connections. Fetches under way are not cut (their
// contexts do that), and the client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	if c.ff != nil {
		c.ff.CloseIdleConnections()
	}
	return nil
}
