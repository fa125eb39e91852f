package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Server serves the repositories of its Config over HTTP. It is safe for
// concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	srv     *fasthttp.Server
	admin   *fasthttp.Server // the operator pages' listener (ServeAdmin)
	m       *metrics
	access  *accessLog // nil: no access log
	tab     atomic.Pointer[table]
	other   repoMetrics // requests that reached no repository
	started time.Time
	ccNotif []byte
	// blob is Cache.Blob, bound once: the parts of composite files are
	// read with it (a method value made per request would allocate).
	blob  cache.Getter
	debug bool // the logger logs at level debug: log every request

	// ctx bounds pull-through fetches, which outlive the request that
	// started them; Shutdown ends it first and waits for pulls.
	ctx    context.Context
	cancel context.CancelFunc
	pullMu sync.Mutex // guards closed and pulls.Add
	closed bool
	pulls  sync.WaitGroup // pull-through fetches running

	setMu sync.Mutex // serializes SetRepos

	connMu sync.Mutex
	conns  map[net.Conn]fasthttp.ConnState // open connections, closed at Shutdown's deadline

	tracked tracker // the accepted connections, for closeUnused
}

// New returns a Server for cfg.
func New(cfg Config) (_ *Server, err error) {
	if cfg.Cache == nil {
		return nil, fmt.Errorf("proxy: no cache: %w", ErrConfig)
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("proxy: certificate %q and key %q go together: %w", cfg.CertFile, cfg.KeyFile, ErrConfig)
	}
	cfg.defaults()
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, started: cfg.Now(), ccNotif: cacheControl(cfg.NotificationMaxAge, cfg.StaleIfError),
		conns: map[net.Conn]fasthttp.ConnState{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Cache != nil {
		s.blob = cfg.Cache.Blob
	}
	s.debug = cfg.Logger.Enabled(s.ctx, slog.LevelDebug)
	s.m = newMetrics(s)
	if cfg.AccessLog != nil {
		if s.access, err = newAccessLog(cfg.AccessLog, cfg.AccessLogFormat); err != nil {
			s.cancel()
			return nil, err
		}
	}
	s.tab.Store(newTable(nil))
	if err := s.SetRepos(cfg.Repos); err != nil {
		s.cancel()
		return nil, err
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		Name:                         "rrdp-proxy/" + cfg.Version,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  cfg.MaxConns,
		MaxConnsPerIP:                cfg.MaxConnsPerIP,
		MaxRequestBodySize:           4 << 10, // GET and HEAD carry no body
		ReadBufferSize:               8 << 10,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       newFasthttpLogger(cfg.Logger),
		ConnState:                    s.connState,
	}
	s.admin = &fasthttp.Server{
		Handler:     s.handleAdmin,
		Name:        "rrdp-proxy/" + cfg.Version,
		ReadTimeout: 10 * time.Second,
		// A CPU profile or trace runs in the handler; the write that
		// follows is small.
		WriteTimeout:       time.Minute,
		IdleTimeout:        time.Minute,
		Concurrency:        64,
		MaxRequestBodySize: 4 << 10,
		CloseOnShutdown:    true,
		Logger:             newFasthttpLogger(cfg.Logger),
	}
	return s, nil
}

// Handler returns the request handler, for tests and for callers that run
// their own fasthttp.Server. It reads request header names in fasthttp's
// normalised form: such a server must leave DisableHeaderNamesNormalizing
// false.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve serves plain HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", false)
	if err := s.srv.Serve(trackListener{ln, &s.tracked}); err != nil {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// ServeTLS serves HTTPS on ln until Shutdown, with Config.TLS or else
// Config.CertFile and KeyFile.
func (s *Server) ServeTLS(ln net.Listener) error {
	conf := s.cfg.TLS
	if conf == nil {
		if s.cfg.CertFile == "" {
			return fmt.Errorf("serve tls %s: no certificate: %w", ln.Addr(), ErrConfig)
		}
		cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("serve tls %s: %w", ln.Addr(), err)
		}
		conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", true, "cert", s.cfg.CertFile)
	// The connections are tracked above TLS: a connection that completed
	// its handshake but never sent a request is idle (Shutdown).
	if err := s.srv.Serve(trackListener{tls.NewListener(ln, conf), &s.tracked}); err != nil {
		return fmt.Errorf("serve tls %s: %w", ln.Addr(), err)
	}
	return nil
}

// ServeAdmin serves the operator pages (/metrics, /status, /status.json,
// /healthz, /readyz, /index.json) and, with Config.PProf, net/http/pprof
// under /debug/pprof/, in plain HTTP on ln until Shutdown; every other
// path is 404. With Config.AdminOnly the public listeners no longer serve
// the operator pages.
func (s *Server) ServeAdmin(ln net.Listener) error {
	s.log.Info("serving the operator pages", "addr", ln.Addr().String(), "pprof", s.cfg.PProf)
	if err := s.admin.Serve(ln); err != nil {
		return fmt.Errorf("serve admin %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown cancels the pull-through fetches (the requests waiting for
// them answer 503 at once), stops accepting connections, lets the
// requests under way finish until ctx ends, then closes the connections
// still open, and waits for the pull-through fetches until ctx ends.
// Serve returns once its listener is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.pullMu.Lock()
	s.closed = true
	s.pullMu.Unlock()
	s.cancel()
	unused := make(chan struct{})
	go s.closeUnused(unused)
	err := s.srv.ShutdownWithContext(ctx)
	close(unused)
	if aerr := s.admin.ShutdownWithContext(ctx); err == nil {
		err = aerr
	}
	if err == nil {
		err = s.waitPulls(ctx)
	}
	if err != nil {
		s.connMu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.Close()
		}
		s.connMu.Unlock()
		s.log.Warn("shutdown deadline: connections cut", "conns", n)
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// closeUnused closes, until done is closed, the connections that never
// sent a byte of a request. fasthttp counts a new connection as active
// from its accept, so one that a client opened and left unused (Go's
// Transport dials spare connections under concurrency) would hold
// ShutdownWithContext until the ReadTimeout; closing it loses no request.
func (s *Server) closeUnused(done <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.tracked.closeUnused()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// waitPulls waits until the pull-through fetches end or ctx does. Every
// fetch runs under s.ctx, which Shutdown cancelled: the upstream client
// cuts whatever phase it is in (connecting, the TLS handshake, the wait
// for the origin's headers, the body), and the cache's PutBlob takes the
// same context, so they end promptly; ctx bounds the wait all the same.
func (s *Server) waitPulls(ctx context.Context) error {
	done := make(chan struct{})
	go func() { // ends with the last pull
		s.pulls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for pull-through fetches: %w", ctx.Err())
	}
}

// startPull counts a pull-through fetch about to start, or reports false
// once Shutdown began.
func (s *Server) startPull() bool {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	if s.closed {
		return false
	}
	s.pulls.Add(1)
	return true
}

func (s *Server) connState(c net.Conn, st fasthttp.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		delete(s.conns, c)
	default:
		s.conns[c] = st
	}
}

// SetRepos replaces the repositories served, as on a configuration
// reload. A repository whose configuration did not change (its Client
// and Limits included) keeps its counters and pulled files.
func (s *Server) SetRepos(repos []Repo) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	old := map[string]*repo{}
	for _, r := range s.tab.Load().repos {
		old[r.cfg.Name] = r
	}
	checked, err := checkRepos(repos, s.cfg.AllowHTTPBase)
	if err != nil {
		return err
	}
	var rs []*repo
	for _, r := range checked {
		if o := old[r.cfg.Name]; o != nil && sameRepo(o, r) {
			o.live.Store(r.live.Load())
			r = o
		} else {
			r.pull = newPuller(s, r)
		}
		rs = append(rs, r)
	}
	s.tab.Store(newTable(rs))
	return nil
}

// CheckRepos returns the error New and SetRepos return for c.Repos, if
// any: a repository New refuses, or two that share a route (host and path
// in reverse mode, path in mirror mode). conf uses it, so that a
// configuration check fails where serving would.
func (c *Config) CheckRepos() error {
	_, err := checkRepos(c.Repos, c.AllowHTTPBase)
	return err
}

// checkRepos builds repos and checks that their names and routes are
// unique.
func checkRepos(repos []Repo, allowHTTP bool) ([]*repo, error) {
	names := map[string]bool{}
	routes := map[string]string{}
	rs := make([]*repo, 0, len(repos))
	for _, cfg := range repos {
		r, err := newRepo(cfg, allowHTTP)
		if err != nil {
			return nil, err
		}
		if names[r.cfg.Name] {
			return nil, fmt.Errorf("repository %q: configured twice: %w", r.cfg.Name, ErrConfig)
		}
		names[r.cfg.Name] = true
		keys := []string{"*" + r.prefix}
		if r.cfg.Mode == ModeReverse {
			keys = keys[:0]
			for _, h := range r.hosts {
				keys = append(keys, h+r.prefix)
			}
		}
		for _, k := range keys {
			if o, dup := routes[k]; dup {
				return nil, fmt.Errorf("repositories %q and %q: same route %s: %w", o, r.cfg.Name, k, ErrConfig)
			}
			routes[k] = r.cfg.Name
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func sameRepo(a, b *repo) bool {
	return a.cfg.Key == b.cfg.Key && a.cfg.Origin == b.cfg.Origin && a.cfg.Mode == b.cfg.Mode &&
		a.cfg.Base == b.cfg.Base && slices.Equal(a.hosts, b.hosts) &&
		a.cfg.Client == b.cfg.Client && a.cfg.Limits == b.cfg.Limits
}

// handle is the fasthttp handler of the public listeners. With the
// logger at level debug, it logs every request; with Config.AccessLog it
// writes a line per request there.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	repo := s.dispatch(ctx)
	if s.access != nil {
		s.access.write(ctx, repo)
	}
	if s.debug {
		s.log.Debug("request", "repo", repo, "method", string(ctx.Method()), "host", string(ctx.Host()), "path", string(ctx.Path()),
			"status", ctx.Response.StatusCode(), "bytes", len(ctx.Response.Body()), "remote", ctx.RemoteAddr().String())
	}
}

// dispatch answers the operator routes (unless Config.AdminOnly moved
// them to the admin listener), then the repositories. It returns the name
// of the repository the request reached, or "".
func (s *Server) dispatch(ctx *fasthttp.RequestCtx) string {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed) // resets the headers
		ctx.Response.Header.SetCanonical(hdrAllow, valAllow)
		s.other.count(kindOther, formatXML, fasthttp.StatusMethodNotAllowed, 0)
		return ""
	}
	p := ctx.Path()
	if s.cfg.AdminOnly {
		if isOpsPath(p) {
			s.notFound(ctx)
			return ""
		}
	} else if s.serveOps(ctx, p) {
		return ""
	}
	t := s.tab.Load()
	r, rel := t.route(ctx.Host(), p)
	if r == nil {
		if r = t.passFor(ctx.Host()); r != nil {
			s.servePass(ctx, r, p)
			return r.cfg.Name
		}
		s.notFound(ctx)
		return ""
	}
	s.serveRepo(ctx, r, rel)
	s.observe(rel, ctx.Time())
	return r.cfg.Name
}

// notFound answers 404 for a path outside every repository. It is
// no-store: a CDN in front would otherwise cache it.
func (s *Server) notFound(ctx *fasthttp.RequestCtx) {
	ctx.Error("not found\n", fasthttp.StatusNotFound)
	ctx.Response.Header.SetCanonical(hdrCacheControl, ccNoStore)
	s.other.count(kindOther, formatXML, fasthttp.StatusNotFound, 0)
}

// handleAdmin is the handler of the admin listener: the operator pages,
// and pprof when configured.
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	p := ctx.Path()
	switch {
	case s.cfg.PProf && bytes.HasPrefix(p, pprofPrefix):
		pprofHandler(ctx)
	case string(p) == releasePath:
		s.serveRelease(ctx)
	case !ctx.IsGet() && !ctx.IsHead():
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.SetCanonical(hdrAllow, valAllow)
		s.other.count(kindOther, formatXML, fasthttp.StatusMethodNotAllowed, 0)
	case s.serveOps(ctx, p):
	default:
		s.notFound(ctx)
	}
	if s.access != nil {
		s.access.write(ctx, "")
	}
}

// serveRepo answers a path under a repository's Base: a file of its head,
// a file pulled before, or a pull-through.
func (s *Server) serveRepo(ctx *fasthttp.RequestCtx, r *repo, rel []byte) {
	if r.compactKey != "" && bytes.HasPrefix(rel, []byte(compactDir)) {
		s.serveCompact(ctx, r, rel)
		return
	}
	var e *entry
	h := s.cfg.Cache.Head(r.cfg.Key)
	if h != nil {
		e = r.index(h).files[string(rel)]
	}
	if e != nil {
		s.serveHeld(ctx, r, e, rel)
		return
	}
	s.serveTail(ctx, r, h, rel)
}

// serveHeld answers with e, a file of the head of r.
func (s *Server) serveHeld(ctx *fasthttp.RequestCtx, r *repo, e *entry, rel []byte) {
	r.m.hits.Add(1)
	cc := ccImmutable
	if e.kind == kindNotification {
		cc = s.ccNotif
	}
	status, n, err := s.serveEntry(ctx, e, cc, s.cfg.Cache.Blob)
	if err != nil {
		status = s.entryFailed(ctx, r, e, rel, err, "file of the head unavailable")
	}
	r.m.count(e.kind, e.format, status, n)
}

// entryFailed answers a file of a head (the node's, or a newer one found
// by catch-up) that could not be served, before any header went out, and
// returns the status.
func (s *Server) entryFailed(ctx *fasthttp.RequestCtx, r *repo, e *entry, rel []byte, err error, what string) int {
	if e.retained && errors.Is(err, fs.ErrNotExist) {
		// A file that left the notification, evicted from memory
		// with no state directory to keep it (cache.memory bounds
		// retention there), or dropped by the disk's cap: gone, as
		// for an RP that comes too late.
		s.log.Debug("retained file no longer held", "repo", r.cfg.Name, "path", string(rel), "err", err)
		answer404(ctx)
		return fasthttp.StatusNotFound
	}
	// The head names a blob the cache cannot give: invariant 1 broken
	// below us.
	s.log.Error(what, "repo", r.cfg.Name, "path", string(rel), "err", err)
	return s.fail(ctx, err)
}

// serveCompact answers a path under a repository's compact directory
// (Repo.Compact) from its compact head: never pulled through, never
// passed through, since the origin has no such files.
func (s *Server) serveCompact(ctx *fasthttp.RequestCtx, r *repo, rel []byte) {
	var e *entry
	h := s.cfg.Cache.Head(r.compactKey)
	if h != nil {
		e = r.compactIndex(h).files[string(rel)]
	}
	if e == nil && string(rel) != compactNotification {
		e = s.catchupCompact(r, rel)
	}
	switch {
	case e != nil:
		s.serveHeld(ctx, r, e, rel)
	case string(rel) == compactNotification:
		// Not validated yet: as for a repository without a state.
		status := s.fail(ctx, fmt.Errorf("repository %s: compact: %w", r.cfg.Name, ErrNoHead))
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "10")
		r.m.count(kindNotification, formatCompact, status, 0)
	default:
		answer404(ctx)
		r.m.count(kindOther, formatCompact, fasthttp.StatusNotFound, 0)
	}
}

// serveTail answers a path of a repository that its head does not name:
// from a newer head, through pass-through or pull-through.
func (s *Server) serveTail(ctx *fasthttp.RequestCtx, r *repo, h *cache.Head, rel []byte) {
	var e *entry
	if h == nil && isNotification(rel) {
		status := s.fail(ctx, fmt.Errorf("repository %s: %w", r.cfg.Name, ErrNoHead))
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "10")
		r.m.count(kindNotification, formatOfName(rel), status, 0)
		return
	}
	if e = s.catchup(r, rel); e != nil {
		r.m.catchups.Add(1)
		status, n, err := s.serveEntry(ctx, e, ccImmutable, s.cfg.Cache.Blob)
		if err != nil {
			status = s.entryFailed(ctx, r, e, rel, err, "file of a newer head unavailable")
		}
		r.m.count(e.kind, e.format, status, n)
		return
	}
	if r.cfg.Passthrough && !isRRDPName(rel) {
		// Not an RRDP file: one of the host's other files.
		s.servePass(ctx, r, append([]byte(r.prefix), rel...))
		return
	}
	if len(rel) == 0 || pullClient(s, r) == nil {
		answer404(ctx)
		r.m.count(kindOther, formatOfName(rel), fasthttp.StatusNotFound, 0)
		return
	}
	for try := 0; ; try++ {
		e = r.pull.lookup(rel)
		if e != nil {
			r.m.hits.Add(1)
		} else {
			// get counts the request as a hit or a miss.
			wait, cancel := context.WithTimeout(s.ctx, s.cfg.PullWait)
			var err error
			e, err = r.pull.get(wait, string(rel))
			cancel()
			if err != nil {
				if !errors.Is(err, ErrNotNamed) {
					s.log.Warn("pull-through failed", "repo", r.cfg.Name, "path", string(rel), "err", err)
				}
				r.m.count(kindOther, formatOfName(rel), s.fail(ctx, err), 0)
				return
			}
		}
		status, n, err := s.serveEntry(ctx, e, ccPulled, s.cfg.Cache.Blob)
		if errors.Is(err, fs.ErrNotExist) && try == 0 {
			r.pull.forget(string(rel)) // evicted: pull again
			continue
		}
		if err != nil {
			status = s.fail(ctx, err)
		}
		r.m.count(e.kind, e.format, status, n)
		return
	}
}

// fail answers a request with the status err maps to, and returns it.
// This is the one place errors become statuses.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) int {
	status := fasthttp.StatusBadGateway
	switch {
	case errors.Is(err, ErrNotNamed):
		status = fasthttp.StatusNotFound
	case errors.Is(err, ErrNoHead), errors.Is(err, context.Canceled):
		status = fasthttp.StatusServiceUnavailable
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		status = fasthttp.StatusGatewayTimeout
	case errors.Is(err, fs.ErrNotExist):
		status = fasthttp.StatusInternalServerError
	}
	ctx.Error(fasthttp.StatusMessage(status)+"\n", status) // resets the headers set so far
	// A CDN caches 404s and may cache errors: a file this node lacks
	// now may be there in a second (a fleet behind a load balancer).
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	return status
}

// answer404 answers 404, not to be cached.
func answer404(ctx *fasthttp.RequestCtx) {
	ctx.Error("not found\n", fasthttp.StatusNotFound)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
}

// catchup asks Config.Catchup for a newer head naming rel, a file of a
// snapshot or delta the node's head does not name, and returns its entry,
// or nil. It waits up to PullWait.
func (s *Server) catchup(r *repo, rel []byte) *entry {
	if s.cfg.Catchup == nil || len(rel) == 0 || isNotification(rel) {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PullWait)
	defer cancel()
	h, err := s.cfg.Catchup(ctx, r.cfg.Key, string(rel))
	if err != nil {
		s.log.Warn("catch up for a file of a newer serial", "repo", r.cfg.Name, "path", string(rel), "err", err)
		return nil
	}
	if h == nil {
		return nil
	}
	return r.aheadIndex(h).files[string(rel)]
}

// catchupCompact is catchup for rel, a file under the compact directory
// that the node's compact head does not name: in a fleet, the shared
// tier may hold a later compact head that names it.
func (s *Server) catchupCompact(r *repo, rel []byte) *entry {
	if s.cfg.Catchup == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PullWait)
	defer cancel()
	h, err := s.cfg.Catchup(ctx, r.compactKey, string(rel))
	if err != nil || h == nil {
		if err != nil {
			s.log.Warn("catch up for a compact file of a newer serial", "repo", r.cfg.Name, "path", string(rel), "err", err)
		}
		return nil
	}
	r.m.catchups.Add(1)
	return r.compactAheadIndex(h).files[string(rel)]
}

// isRRDPName reports whether rel names an RRDP or .bin file (it ends in
// .xml or .bin): such a path is served from the head or pulled through
// against the origin's notification, never passed through unverified.
func isRRDPName(rel []byte) bool {
	return bytes.HasSuffix(rel, []byte(".xml")) || bytes.HasSuffix(rel, []byte(".bin"))
}

func isNotification(rel []byte) bool {
	return string(rel) == "notification.xml" || string(rel) == "notification.bin"
}

func formatOfName(rel []byte) fileFormat {
	if n := len(rel); n >= 4 && string(rel[n-4:]) == ".bin" {
		return formatBin
	}
	return formatXML
}

// fasthttpLogger sends fasthttp's messages to slog: one per malformed
// request or failed connection, so a client can make them at will. They
// are rate-limited (a burst of logBurst, then one per logEvery; the
// count of those dropped goes with the next) and cut to logMax bytes,
// since fasthttp echoes the client's bytes.
type fasthttpLogger struct {
	l *slog.Logger

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped uint64
}

const (
	logBurst = 10
	logEvery = time.Second
	logMax   = 200
)

func newFasthttpLogger(l *slog.Logger) *fasthttpLogger {
	return &fasthttpLogger{l: l, tokens: logBurst}
}

func (f *fasthttpLogger) Printf(format string, args ...any) {
	f.mu.Lock()
	now := time.Now()
	if !f.last.IsZero() {
		f.tokens = min(logBurst, f.tokens+float64(now.Sub(f.last))/float64(logEvery))
	}
	f.last = now
	if f.tokens < 1 {
		f.dropped++
		f.mu.Unlock()
		return
	}
	f.tokens--
	dropped := f.dropped
	f.dropped = 0
	f.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if len(msg) > logMax {
		msg = strings.ToValidUTF8(msg[:logMax], "") + "..."
	}
	if dropped > 0 {
		f.l.Info("http", "msg", msg, "suppressed", dropped)
		return
	}
	f.l.Info("http", "msg", msg)
}
