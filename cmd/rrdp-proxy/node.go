package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/fleet"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/proxy/validate"
)

// shutdownGrace is how long a shutdown lets the downloads under way finish
// before it closes their connections.
const shutdownGrace = 30 * time.Second

// nodeOptions is what a node takes beside its configuration.
type nodeOptions struct {
	// Logger is the log (discarded); Level, if set, is its level, which a
	// reload changes.
	Logger *slog.Logger
	Level  *slog.LevelVar
	// Listeners are listeners already open, by the address of
	// server.listen or server.tls_listen they stand for (tests and the
	// demo, which need a free port before they write the configuration).
	// The node takes them over; other addresses are listened on.
	Listeners map[string]net.Listener
	// OnChange, if set, is called with each new state a follower of this
	// node publishes (not with heads installed from a fleet's Redis).
	OnChange func(repo string, h *follow.Head)
	// Stderr receives the access log when server.access_log_file is
	// empty (discarded when nil).
	Stderr io.Writer
	// Notify, if set, is told the service's state (systemd's sd_notify).
	Notify *notifier
}

// node is one rrdp-proxy process as serve and demo run it: the cache with
// its tiers (memory; the disk with state_dir; Redis with [cache.redis]),
// the followers that fill it (one per repository, or a fleet node that
// shares them through Redis), and the HTTP server in front of it.
type node struct {
	opts  nodeOptions
	log   *slog.Logger
	cache *cache.Cache
	disk  *diskstore.Store  // nil without state_dir
	redis *redisstore.Store // nil without [cache.redis]
	fleet *fleet.Node       // nil without [cache.redis]
	board *fleet.Reporter   // the fleet's statuses; nil without a fleet
	pulls pullClients       // the server's pull-through clients; changed with mu held
	srv   *proxy.Server
	lns   []served
	admin net.Listener // server.admin_listen; nil without
	// cert is the certificate the TLS listeners present, replaced by a
	// reload without dropping a connection.
	cert   atomic.Pointer[tls.Certificate]
	access *reopener // the access log file; nil without access_log_file
	// valid validates what the followers publish ([validate]); nil
	// without. closeTA closes its TA certificate fetcher.
	valid *validate.Validator
	// compact says the validator publishes the compact format: [compact]
	// at the start (a reload that adds or removes it takes a restart).
	compact bool
	closeTA func()

	mu      sync.Mutex // serializes Run's start and end and Reload
	cfg     *conf.Config
	stopped bool
	wg      sync.WaitGroup // the followers
	// repos are the followers of a solo node, by repository name;
	// changed with mu and statsMu held, read with either.
	repos   map[string]*follower
	statsMu sync.RWMutex
}

// served is a listener and whether it speaks TLS.
type served struct {
	ln  net.Listener
	tls bool
}

// follower is the follower of one repository and what stops it.
type follower struct {
	repo   conf.Repository
	base   string
	f      *follow.Follower
	client *upstream.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// newNode builds a node for cfg: it opens the tiers, loads the heads they
// hold (so that a restarted node serves at once, even while its origins are
// down), and listens. Run starts it.
func newNode(ctx context.Context, cfg *conf.Config, opts nodeOptions) (_ *node, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	n := &node{opts: opts, log: opts.Logger, cfg: cfg, repos: map[string]*follower{}}
	defer func() {
		if err != nil {
			n.close()
			for _, ln := range opts.Listeners {
				ln.Close() // taken over, even when not used
			}
		}
	}()
	if d := cfg.Cache.Spill(); d != "" {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create the spill directory: %w", err)
		}
	}
	ccfg := cfg.Cache.Config()
	ccfg.Logger = n.log.With("part", "cache")
	if dcfg, ok := cfg.Cache.Disk(); ok {
		dcfg.Logger = n.log.With("part", "disk")
		if n.disk, err = diskstore.Open(dcfg); err != nil {
			return nil, fmt.Errorf("open the state directory: %w", err)
		}
		ccfg.Tiers = append(ccfg.Tiers, n.disk)
	}
	if r := cfg.Cache.Redis; r != nil {
		if err := n.newFleet(cfg, ccfg); err != nil {
			return nil, err
		}
		n.cache = n.fleet.Cache()
	} else {
		if n.cache, err = cache.New(ccfg); err != nil {
			return nil, fmt.Errorf("create the cache: %w", err)
		}
		// Fleet nodes load in Run; a solo node loads here so that its
		// followers start from the stored heads. Only the configured
		// repositories: a state directory may hold heads of removed ones,
		// which would otherwise stay pinned in memory.
		names := make([]string, 0, len(cfg.Repositories))
		for i := range cfg.Repositories {
			names = append(names, cfg.Repositories[i].Key())
		}
		if cfg.Compact != nil && cfg.Validate != nil {
			for i := range cfg.Repositories {
				if r := &cfg.Repositories[i]; r.Serves("compact") {
					names = append(names, cache.CompactKey(r.Key())) // continued, not restarted
				}
			}
		}
		if err := n.cache.LoadRepos(ctx, names); err != nil {
			n.log.Warn("some stored states could not be loaded", "err", err)
		}
	}
	if cfg.Validate != nil {
		if err := n.newValidator(cfg); err != nil {
			return nil, fmt.Errorf("validation: %w", err)
		}
	}
	if n.pulls, err = pullClients(nil).update(cfg); err != nil {
		return nil, err
	}
	repos, err := n.serverRepos(cfg, n.pulls)
	if err != nil {
		return nil, err
	}
	s := &cfg.Server
	var catchup func(context.Context, string, string) (*follow.Head, error)
	if n.fleet != nil {
		catchup = n.fleet.Catchup
	}
	pcfg, err := n.serverConfig(cfg)
	if err != nil {
		return nil, err
	}
	var validation proxy.Validation
	switch {
	case n.valid != nil && n.fleet != nil:
		validation = newFleetValidation(n.valid, n.fleet, n.board, cfg)
	case n.valid != nil:
		validation = n.valid
	}
	n.srv, err = proxy.New(proxy.Config{
		Repos:              repos,
		Cache:              n.cache,
		Catchup:            catchup,
		ReadTimeout:        s.ReadTimeout.Duration,
		WriteTimeout:       s.WriteTimeout.Duration,
		IdleTimeout:        s.IdleTimeout.Duration,
		MaxConns:           s.MaxConns,
		MaxConnsPerIP:      s.MaxConnsPerIP,
		TLS:                pcfg.TLS,
		NotificationMaxAge: s.NotificationMaxAge.Duration,
		AllowHTTPBase:      s.AllowHTTPBase,
		AdminOnly:          pcfg.AdminOnly,
		PProf:              pcfg.PProf,
		AccessLog:          pcfg.AccessLog,
		AccessLogFormat:    pcfg.AccessLogFormat,
		Fleet:              pcfg.Fleet,
		Validation:         validation,
		Node:               s.Node,
		Version:            Version(),
		Logger:             n.log.With("part", "server"),
	})
	if err != nil {
		return nil, fmt.Errorf("create the server: %w", err)
	}
	if s.AdminListen != "" {
		if n.admin, err = n.listenAddr(s.AdminListen); err != nil {
			return nil, err
		}
	}
	for _, a := range s.Listen {
		if err := n.listen(a, false); err != nil {
			return nil, err
		}
	}
	for _, a := range s.TLSListen {
		if err := n.listen(a, true); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// newFleet makes the node a member of a fleet sharing the Redis of cfg.
func (n *node) newFleet(cfg *conf.Config, ccfg cache.Config) error {
	rcfg := cfg.Cache.Redis.Config()
	rcfg.Logger = n.log.With("part", "redis")
	var err error
	if n.redis, err = redisstore.New(rcfg); err != nil {
		return fmt.Errorf("open redis %s: %w", cfg.Cache.Redis.URL, err)
	}
	var fcs []follow.Config
	names := make(map[string]string, len(cfg.Repositories)) // by key
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		fc, err := n.followConfig(cfg, r)
		if err != nil {
			return err
		}
		fcs = append(fcs, fc)
		names[r.Key()] = r.Name
	}
	fcfg := fleet.Config{
		Node:     cfg.Server.Node,
		Redis:    n.redis,
		Cache:    ccfg,
		Repos:    fcs,
		LeaseTTL: cfg.Cache.Redis.LeaseTTL.Duration,
		Logger:   n.log.With("part", "fleet"),
	}
	if cfg.Validate != nil {
		// Every node validates what it serves: its followers publish
		// through the validator, the heads it installs are observed. The
		// validator is made next, with the fleet's cache; the fleet calls
		// these once Run has started.
		fcfg.Wrap = func(key string, next follow.Store) follow.Store { return n.valid.Store(names[key], next) }
		fcfg.Installed = func(key string, h *follow.Head) { n.valid.Seed(names[key], key, h) }
		fcfg.Stopped = func(key string) { n.valid.Drop(key) }
		if cfg.Compact != nil {
			// The holder of a repository's lease signs its compact
			// serials; the others install them (proxy/fleet compact.go).
			for i := range cfg.Repositories {
				if r := &cfg.Repositories[i]; r.Serves("compact") {
					fcfg.Compact = append(fcfg.Compact, r.Key())
				}
			}
			fcfg.Took = func(string) { n.valid.RepublishCompact() }
		}
	}
	n.fleet, err = fleet.New(fcfg)
	if err != nil {
		return fmt.Errorf("create the fleet node: %w", err)
	}
	n.board = fleet.NewReporter(n.fleet)
	return nil
}

func (n *node) listen(addr string, tls bool) error {
	ln, err := n.listenAddr(addr)
	if err != nil {
		return err
	}
	n.lns = append(n.lns, served{ln, tls})
	return nil
}

// listenAddr returns the listener of opts.Listeners for addr, or listens.
func (n *node) listenAddr(addr string) (net.Listener, error) {
	if ln, ok := n.opts.Listeners[addr]; ok {
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// AdminAddr returns the address of the admin listener, or nil.
func (n *node) AdminAddr() net.Addr {
	if n.admin == nil {
		return nil
	}
	return n.admin.Addr()
}

// Addrs returns the addresses the node listens on, plain ones first.
func (n *node) Addrs() []net.Addr {
	var as []net.Addr
	for _, s := range n.lns {
		as = append(as, s.ln.Addr())
	}
	return as
}

// Cache returns the cache the node serves from.
func (n *node) Cache() *cache.Cache { return n.cache }

// Run serves until ctx ends, then shuts down gracefully: the server stops
// accepting connections and lets the downloads under way finish for up to
// shutdownGrace, the followers stop, and every goroutine of the node is
// waited for. A listener that fails ends Run too, with its error.
func (n *node) Run(ctx context.Context) error {
	defer n.close()
	loops, stopLoops := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if n.fleet != nil {
		wg.Go(func() { n.fleet.Run(loops) })
		wg.Go(func() { n.board.Run(loops) })
		if n.valid != nil {
			wg.Go(func() { n.valid.Run(loops) })
		}
	} else {
		wg.Go(func() { n.cache.Run(loops) })
		if n.valid != nil {
			wg.Go(func() { n.valid.Run(loops) })
		}
		n.mu.Lock()
		err := n.startRepos(n.cfg)
		n.mu.Unlock()
		if err != nil {
			stopLoops()
			return err
		}
	}
	if n.disk != nil {
		wg.Go(func() { n.disk.Run(loops) })
	}
	serveErr := make(chan error, len(n.lns)+1)
	var servers sync.WaitGroup
	if n.admin != nil {
		servers.Go(func() {
			if err := n.srv.ServeAdmin(n.admin); err != nil {
				serveErr <- err
			}
		})
	}
	for _, s := range n.lns {
		servers.Go(func() {
			serve := n.srv.Serve
			if s.tls {
				serve = n.srv.ServeTLS
			}
			if err := serve(s.ln); err != nil {
				serveErr <- err
			}
		})
	}
	n.opts.Notify.ready()
	stopWatchdog := n.opts.Notify.startWatchdog(n.log)
	defer stopWatchdog()
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		n.log.Error("a listener failed: shutting down", "err", err)
	}
	n.opts.Notify.stopping()
	n.log.Info("shutting down", "grace", shutdownGrace)
	n.mu.Lock()
	n.stopped = true
	for _, f := range n.repos {
		f.cancel()
	}
	n.mu.Unlock()
	stopLoops()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	if serr := n.srv.Shutdown(sctx); serr != nil {
		n.log.Warn("shutdown cut connections short", "err", serr)
	}
	cancel()
	// A Serve that had not started when Shutdown ran would serve on:
	// closing the listeners ends it.
	for _, s := range n.lns {
		s.ln.Close()
	}
	if n.admin != nil {
		n.admin.Close()
	}
	servers.Wait()
	n.wg.Wait()
	wg.Wait()
	n.log.Info("stopped")
	return err
}

// close releases what newNode opened. Every goroutine must have ended.
func (n *node) close() {
	for _, s := range n.lns {
		s.ln.Close()
	}
	if n.admin != nil {
		n.admin.Close()
	}
	if n.access != nil {
		n.access.Close()
	}
	if n.closeTA != nil {
		n.closeTA()
	}
	n.pulls.closeExcept(nil)
	switch {
	case n.fleet != nil:
		n.fleet.Close()
	case n.cache != nil:
		n.cache.Close()
	}
	if n.redis != nil {
		n.redis.Close()
	}
}

// baseURI returns the Base of r, computed with proxy.BaseURI so that the
// follower publishes notifications naming the URIs the server routes; it
// must agree with conf's reading of the file (base and mirror_base).
func baseURI(cfg *conf.Config, r *conf.Repository) (string, error) {
	mode, public := proxy.Mode(r.Mode), cfg.Server.MirrorBase
	if mode == proxy.ModeReverse {
		public = r.Base
		if public == "" && len(r.Hosts) > 0 {
			public = "https://" + r.Hosts[0] + "/"
		}
	}
	base, err := proxy.BaseURI(mode, r.Origin, public)
	if err != nil {
		return "", fmt.Errorf("repository %q: %w", r.Name, err)
	}
	if want := cfg.BaseURI(r); base != want {
		return "", fmt.Errorf("repository %q: served at %s, but its base says %s: the path under the host must be the origin's directory", r.Name, base, want)
	}
	return base, nil
}

// followConfig returns the follower configuration of r, without Store,
// Start and Blobs.
func (n *node) followConfig(cfg *conf.Config, r *conf.Repository) (follow.Config, error) {
	base, err := baseURI(cfg, r)
	if err != nil {
		return follow.Config{}, err
	}
	ucfg := r.Upstream()
	ucfg.UserAgent = "rrdp-proxy/" + Version()
	client, err := upstream.New(ucfg)
	if err != nil {
		return follow.Config{}, fmt.Errorf("repository %q: %w", r.Name, err)
	}
	fc := cfg.Follow(r)
	fc.Base = base
	fc.Transparent = r.Mode == conf.ModeReverse // the origin's own XML (README, reverse mode)
	fc.Client = client
	fc.Seed = seedOf(r.Name)
	fc.Logger = n.log.With("repo", r.Name)
	name := r.Name
	if on := n.opts.OnChange; on != nil {
		fc.OnChange = func(h *follow.Head) { on(name, h) }
	}
	// n.srv is set before Run starts a follower.
	fc.OnSync = func(d time.Duration, err error) { n.srv.ObserveSync(name, d, err) }
	return fc, nil
}

// seedOf gives each repository its own jitter, the same on every run.
func seedOf(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// serverRepos returns the repositories of cfg as the server takes them,
// each with its pull-through client from pulls.
func (n *node) serverRepos(cfg *conf.Config, pulls pullClients) ([]proxy.Repo, error) {
	var repos []proxy.Repo
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		base, err := baseURI(cfg, r)
		if err != nil {
			return nil, err
		}
		pr := proxy.Repo{
			Name:     r.Name,
			Origin:   r.Origin,
			Key:      r.Key(),
			Mode:     proxy.Mode(r.Mode),
			Base:     base,
			Hosts:    r.Hosts,
			Interval: r.PollInterval.Duration,
			Client:   pulls[r.Name].client,
			Limits:   pullLimits(cfg, r),

			Passthrough:      r.Passthrough && r.Mode == conf.ModeReverse,
			PassthroughPaths: r.PassthroughPaths,
			PassthroughMax:   int64(r.PassthroughMax),
			// Published by the validator (compactRepos).
			Compact: n.compact && r.Serves("compact"),
		}
		name, key := r.Name, r.Key()
		if n.fleet == nil {
			pr.Stats = func() follow.Stats { return n.stats(name) }
		} else {
			// The holder's follower, shared through Redis on the others.
			pr.Stats = func() follow.Stats {
				st, _ := n.board.Status(key)
				return st.Follow
			}
		}
		repos = append(repos, pr)
	}
	return repos, nil
}

// errStopped: a reload that came after the shutdown began.
var errStopped = errors.New("node is shutting down")
