package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Mode is how a repository is mapped to URLs.
type Mode string

const (
	// ModeReverse serves a repository under its own host name and the
	// directory of its origin's notification: a reverse proxy in front
	// of the publication server (TLS terminated here or by a load
	// balancer).
	ModeReverse Mode = "reverse"
	// ModeMirror serves a repository at /<origin host>/<origin
	// directory>/ under the mirror's host name, beside others.
	ModeMirror Mode = "mirror"
)

// Repo is one repository the server serves.
type Repo struct {
	// Name names the repository in metrics, logs and the status page;
	// unique. Required.
	Name string
	// Origin is the URL of the origin's notification (notification.xml
	// of a publication server, or notification.bin of another
	// rrdp-proxy). Required.
	Origin string
	// Key is the repository's head key in the cache, the Repo of its
	// follower (Origin).
	Key string
	// Mode is ModeReverse or ModeMirror (ModeReverse).
	Mode Mode
	// Compact serves the repository's compact publication under
	// "compact/" in Base, from the cache's head cache.CompactKey(Key)
	// (published by the validator, proxy/validate): 503 for the
	// notification until the first one, 404 for other names.
	Compact bool
	// Base is the public https URI (RFC 8182) of the directory the
	// repository is served under, ending in '/', and the Base its
	// follower publishes with; compute it with BaseURI. Empty means
	// BaseURI(Mode, Origin, ""), which only reverse mode accepts.
	Base string
	// Hosts are the Host header values routed to the repository in
	// reverse mode (the host of Base). A value without a port matches
	// any port. Mirror routes match on the path alone, whatever the
	// Host.
	Hosts []string
	// Interval is the follower's poll interval, for the status page's
	// staleness rule (the follower's default, 1m).
	Interval time.Duration
	// Stats, if set, reports the follower's counters (follower.Stats)
	// for metrics and the status page.
	Stats func() follow.Stats
	// Client fetches this repository's pull-through files and the
	// origin's notification that vouches for them: a client made from the
	// repository's own upstream configuration (its CA, caps, timeouts and
	// FetchFrom), like its follower's. Nil means Config.Client. The caller
	// owns it and closes it once the Server no longer serves the Repo.
	Client *upstream.Client
	// Limits are what the origin's notification is decoded with for
	// pull-through: the follower's (follow.Config.Limits, with AllowHTTP
	// set when the follower's is), so that what the follower accepts
	// pull-through accepts too.
	Limits rrdpxml.Limits
	// Passthrough, in reverse mode, serves the paths under Hosts that are
	// not the repository's RRDP files (the TA certificate its TAL names,
	// robots.txt, a landing page) from the origin's host, fetched with
	// Client on demand and cached with HTTP semantics (passthrough.go);
	// false answers 404 for them. Never for another host: no open proxy.
	Passthrough bool
	// PassthroughPaths are the paths passed through: an entry ending in
	// '/' is a prefix ("/ta/"), except "/" alone, which is the landing
	// page only; any other entry is an exact path ("/robots.txt"). None:
	// nothing passes. The origin's host may serve more than its RRDP
	// files and TA certificate (a publication server's metrics, its UI):
	// only what is listed is published under the public name.
	PassthroughPaths []string
	// PassthroughMax caps one file passed through (16 MiB).
	PassthroughMax int64
}

// Config configures a Server. Every zero field takes the default in its
// comment; Cache is required.
type Config struct {
	// Repos are the repositories served; SetRepos replaces them.
	Repos []Repo
	// Cache holds the heads and blobs served. Required.
	Cache *cache.Cache
	// Catchup, if set, is asked for a head of the repository with Key
	// that names path, a snapshot or delta file the node's own head does
	// not name, before a pull-through or a 404: a fleet node answers with
	// the head in the shared tier, or polls its origin now
	// (fleet.Node.Catchup), so that a relying party sent to another node
	// by a load balancer finds every file the notification it read names.
	// It returns nil and no error when no head names path.
	Catchup func(ctx context.Context, key, path string) (*follow.Head, error)
	// Client fetches pull-through files and the origin notifications
	// that vouch for them for the repositories without a Repo.Client
	// (nil: those have no pull-through; such paths are 404).
	Client *upstream.Client
	// ReadTimeout bounds reading a request (10s); WriteTimeout writing
	// one response, a whole snapshot included (30m, the upstream's
	// snapshot timeout); IdleTimeout the wait for the next request on a
	// kept-alive connection (60s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns caps the connections served at once (65536);
	// MaxConnsPerIP the connections from one client address (0: no cap,
	// since CDNs and NATs put many clients behind one address).
	MaxConns, MaxConnsPerIP int
	// CertFile and KeyFile are the PEM certificate chain and key that
	// ServeTLS presents (none: ServeTLS fails, Serve speaks plain HTTP
	// behind a load balancer).
	CertFile, KeyFile string
	// TLS, if set, is the TLS configuration ServeTLS uses instead of
	// CertFile and KeyFile (certificates loaded by the caller).
	TLS *tls.Config
	// NotificationMaxAge is the max-age of notifications (60s);
	// StaleIfError how long a cache may serve a stale notification when
	// this node fails (24h, RFC 5861). Snapshots and deltas are
	// immutable: max-age one year.
	NotificationMaxAge, StaleIfError time.Duration
	// OriginTTL is how long the origin's notification, fetched to vouch
	// for a pull-through file, is reused (30s).
	OriginTTL time.Duration
	// AllowHTTPBase accepts http:// Bases. Relying parties are told
	// https URIs (RFC 8182, section 3.5.1; RFC 9674), so the default
	// refuses them; a demo, a lab, or an internal core-to-edge link on a
	// private network with TLS terminated elsewhere opts in (the
	// follower needs follow.Config.AllowHTTP too).
	AllowHTTPBase bool
	// PullWait is how long a request waits for a pull-through fetch
	// (1m): then it is answered 504 and the fetch goes on, for the next
	// request. fasthttp does not tell a handler that its client left, so
	// this deadline is what bounds a request whose client disconnected.
	PullWait time.Duration
	// MaxPulled caps the pull-through files remembered (10000); their
	// bytes live in the cache's evictable part.
	MaxPulled int
	// AdminOnly serves the operator pages (/metrics, /status,
	// /status.json, /healthz, /readyz) only on the listener of
	// ServeAdmin: the public listeners answer 404 for them and serve
	// only repositories (and /index.json).
	AdminOnly bool
	// PProf serves net/http/pprof under /debug/pprof/ on the listener of
	// ServeAdmin (never on the public ones).
	PProf bool
	// AccessLog, if set, receives a line per request, in
	// AccessLogFormat: "combined" (the Apache and nginx format, the
	// default) or "json". Writes are serialized, one per line.
	AccessLog       io.Writer
	AccessLogFormat string
	// Fleet, if set, says what this node does for the repository called
	// name in a fleet, for metrics and the status page; false for a
	// repository the fleet does not know. Nil: a standalone node.
	Fleet func(name string) (FleetStatus, bool)
	// StartupGrace is how long after New a repository without a state
	// and without a failed poll keeps /readyz at 503 (5m): the node is
	// still starting. Past it, or once the repository's origin failed,
	// the node is ready and /readyz?repo=NAME says which repository is
	// not.
	StartupGrace time.Duration
	// Validation, if set, is the node's validation of its repositories,
	// shown at /status, /status.json and /metrics, with /vrps.json and
	// the release of held serials on the admin listener (validation.go).
	Validation Validation
	// Node names the node on the status page (the host name).
	Node string
	// Version is rrdp-proxy's version, in the Server header and on the
	// status page ("dev").
	Version string
	// Now is the clock (time.Now); Logger the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 30*time.Minute)
	def(&c.IdleTimeout, time.Minute)
	def(&c.NotificationMaxAge, time.Minute)
	def(&c.StaleIfError, 24*time.Hour)
	def(&c.OriginTTL, 30*time.Second)
	def(&c.PullWait, time.Minute)
	def(&c.StartupGrace, 5*time.Minute)
	if c.MaxConns <= 0 {
		c.MaxConns = 65536
	}
	if c.MaxPulled <= 0 {
		c.MaxPulled = 10000
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// BaseURI returns the public base URI of a repository whose notification
// is at origin, ending in '/': the URI its follower's Config.Base must be
// set to and under which the server routes its files.
//
// In reverse mode it is public's scheme and host (the origin's when public
// is empty) followed by the directory of the origin's notification:
// BaseURI(ModeReverse, "https://rrdp.example.net/rrdp/notification.xml",
// "") is "https://rrdp.example.net/rrdp/". In mirror mode public, the
// mirror's URL, is required, and the origin's host and directory follow
// it: BaseURI(ModeMirror, "https://rrdp.example.net/rrdp/notification.xml",
// "https://mirror.example.org/") is
// "https://mirror.example.org/rrdp.example.net/rrdp/".
func BaseURI(mode Mode, origin, public string) (string, error) {
	o, err := parseHTTPURL(origin)
	if err != nil {
		return "", fmt.Errorf("base of %q: %w", origin, err)
	}
	dir := path.Dir(o.Path)
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	switch mode {
	case ModeReverse, "":
		if public == "" {
			return o.Scheme + "://" + strings.ToLower(o.Host) + dir, nil
		}
		p, err := parseHTTPURL(public)
		if err != nil {
			return "", fmt.Errorf("base of %q: public URL: %w", origin, err)
		}
		return p.Scheme + "://" + strings.ToLower(p.Host) + dir, nil
	case ModeMirror:
		if public == "" {
			return "", fmt.Errorf("base of %q: mirror mode needs the mirror's URL: %w", origin, ErrConfig)
		}
		p, err := parseHTTPURL(public)
		if err != nil {
			return "", fmt.Errorf("base of %q: public URL: %w", origin, err)
		}
		pre := strings.TrimSuffix(p.Path, "/")
		return p.Scheme + "://" + strings.ToLower(p.Host) + pre + "/" + strings.ToLower(o.Host) + dir, nil
	}
	return "", fmt.Errorf("base of %q: mode %q: %w", origin, mode, ErrConfig)
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q is not a plain http(s) URL", ErrConfig, s)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}
