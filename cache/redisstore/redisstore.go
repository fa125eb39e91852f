// Package redisstore implements the shared Redis tier of the rrdp-proxy
// cache for a fleet of nodes: the RRDP (RFC 8182) and iRPKI files of every
// repository as content-addressed blobs, one head per repository, a pub/sub
// channel announcing new heads, and a lease per repository so that one node
// polls each origin while the others follow its head.
//
// Keys, under Config.Prefix:
//
//	blob:<hex>      meta of a blob: "<size> <chunks>"
//	blob:<hex>:<n>  its n-th chunk (Config.ChunkSize bytes, the last shorter)
//	head:<repo>     the head of repo, JSON
//	repos           the set of repositories that have a head
//	heads           the pub/sub channel; each message is a repository
//	lease:<repo>    "<token> <node> <instance>", set with a TTL while a
//	                node holds it
//	fence:<repo>    the last fencing token handed out for repo; a new
//	                token is also above the token in head:<repo>
//	nodes           sorted set of node names, by the time in ms until
//	                which each is alive (Beat), for Fleet
//	blobs           sorted set of the blobs' hex sums, by the time in ms
//	                each was last put or named by a head (for GC)
//	status:<repo>   the status of repo's polling, as its holder shares
//	                it (opaque), with a TTL
//	release:<repo>  an operator's request to release the serial the
//	                validation gate holds for repo (opaque), with a TTL
//	releases        the pub/sub channel announcing release requests;
//	                each message is a repository
//
// A blob is written chunks first and meta last, and a head only after the
// meta of every blob it names (DESIGN.md, invariant 1), so a reader never
// sees half a blob or a head naming a missing one. Every blob read is
// checked against its key; a mismatch wraps cache.ErrSum and is never
// returned, and the blob's meta is removed so that the next PutBlob writes
// it again. Nodes of a fleet should use one ChunkSize: two writers with
// different chunk sizes racing on one blob can leave chunks that do not
// match the meta, which the check detects.
//
// Old blobs are collected by GC (Run calls it periodically): a sorted set
// holds, for every blob, the last time it was put or named by a head, and
// GC removes the blobs no head needs once Config.Grace has passed since.
// Keys have no expiry. Bound Redis's memory as well with maxmemory and
// allkeys-lru if it is shared: that may evict a head (the holder writes
// it again; GC collects nothing while a repository in the set has no
// head) or a lease or fence (PutHeadFenced compares the whole lease value,
// and new tokens stay above the stored head's); an
// evicted chunk reads as a missing blob (fs.ErrNotExist), and PutBlob
// rewrites a blob missing any key.
//
// When Redis is unreachable every call fails within the configured timeouts
// with an error naming the operation; the cache above keeps serving from
// memory.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Config configures a Store. Every zero field takes the default in its
// comment; the zero Config talks to a local Redis.
type Config struct {
	// URL is the Redis server, redis://[user:password@]host:port/db or
	// rediss:// for TLS (redis://127.0.0.1:6379/0).
	URL string
	// Password, if set, overrides the one in URL. The caller passes it;
	// it is not read from the environment here.
	Password string
	// TLS, if set, is used for the connection (overriding rediss://'s
	// and CAPEM).
	TLS *tls.Config
	// CAPEM, if set, holds the PEM certificates of the authorities that
	// sign the server's certificate, instead of the system's; it turns
	// TLS on, as rediss:// does. The server's name is always verified
	// (there is no option to skip it); the caller reads the file.
	CAPEM []byte
	// DialTimeout bounds connecting (1s); ReadTimeout and WriteTimeout
	// bound each round trip's socket reads and writes (3s). A round trip
	// carries at most 16 MiB of chunks: the timeouts must cover that at
	// the link's speed. A failed round trip is retried once, on a new
	// connection if needed, so a call fails after at most about twice
	// DialTimeout plus ReadTimeout.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// ChunkSize is the size of the chunks blobs are split in (4 MiB, at
	// most 256 MiB).
	ChunkSize int
	// Prefix is prepended to every key and to the channel
	// ("rrdp-proxy:"), so that several deployments share a server.
	Prefix string
	// Grace is how long GC keeps a blob that no head needs after it was
	// last put or named by a head, so that a publish in progress (blobs
	// first, head last) keeps its blobs (1h).
	Grace time.Duration
	// GCInterval is the time between collections in Run (10m).
	GCInterval time.Duration
	// Now is the clock (time.Now): PutHead does not require the blobs of
	// files whose retention ended, GC compares it with the times blobs
	// were put, so the nodes of a fleet need synchronised clocks. Logger
	// is the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
	// Instance tells this process apart, in the lease values, from
	// another configured with the same node name, so that the two never
	// both hold a repository (16 random hex digits, from crypto/rand).
	// No spaces.
	Instance string
}

const (
	defaultURL       = "redis://127.0.0.1:6379/0"
	defaultChunkSize = 4 << 20
	maxChunkSize     = 256 << 20
	defaultPrefix    = "rrdp-proxy:"
)

// Store is the Redis tier. It is safe for concurrent use; it implements
// cache.Tier and follow.Store.
type Store struct {
	rdb       *redis.Client
	chunkSize int
	prefix    string
	now       func() time.Time
	logger    *slog.Logger

	grace, gcInterval time.Duration
	instance          string
	badHeads          atomic.Uint64 // undecodable heads met by Heads

	// tokens is the highest fencing token this Store has seen for each
	// repository (leases it took, heads it read): Acquire keeps new
	// tokens above it, so that tokens never start again at 1 when Redis
	// comes back empty while a node of the fleet lives.
	tokenMu sync.Mutex
	tokens  map[string]uint64

	done chan struct{}  // closed by Close: ends the subscriptions
	wg   sync.WaitGroup // subscriptions
	once sync.Once
}

// New returns a Store for cfg. It does not connect: the first call does,
// and Ping checks the server.
func New(cfg Config) (*Store, error) {
	url := cfg.URL
	if url == "" {
		url = defaultURL
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse url: %w", err)
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	if cfg.CAPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAPEM) {
			return nil, errors.New("redisstore: no certificate in CAPEM")
		}
		tc := opt.TLSConfig
		if tc == nil {
			host, _, err := net.SplitHostPort(opt.Addr)
			if err != nil {
				return nil, fmt.Errorf("redisstore: address %q: %w", opt.Addr, err)
			}
			tc = &tls.Config{ServerName: host}
		}
		tc.RootCAs = pool
		tc.MinVersion = tls.VersionTLS12
		opt.TLSConfig = tc
	}
	if cfg.TLS != nil {
		opt.TLSConfig = cfg.TLS
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial timeout", cfg.DialTimeout}, {"read timeout", cfg.ReadTimeout}, {"write timeout", cfg.WriteTimeout},
		{"grace", cfg.Grace}, {"gc interval", cfg.GCInterval}} {
		if d.v < 0 {
			return nil, fmt.Errorf("redisstore: negative %s %v", d.name, d.v)
		}
	}
	opt.DialTimeout = orDuration(cfg.DialTimeout, time.Second)
	opt.ReadTimeout = orDuration(cfg.ReadTimeout, 3*time.Second)
	opt.WriteTimeout = orDuration(cfg.WriteTimeout, 3*time.Second)
	opt.PoolTimeout = opt.ReadTimeout + opt.DialTimeout
	opt.ContextTimeoutEnabled = true
	// One retry, so that a connection broken by a server restart is
	// replaced, but a server that is down fails fast.
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	s := &Store{
		chunkSize:  cfg.ChunkSize,
		prefix:     cfg.Prefix,
		grace:      orDuration(cfg.Grace, time.Hour),
		gcInterval: orDuration(cfg.GCInterval, 10*time.Minute),
		logger:     cfg.Logger,
		done:       make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case s.chunkSize == 0:
		s.chunkSize = defaultChunkSize
	case s.chunkSize < 0 || s.chunkSize > maxChunkSize:
		return nil, fmt.Errorf("redisstore: chunk size %d out of range (1 to %d)", s.chunkSize, maxChunkSize)
	}
	if s.instance = cfg.Instance; s.instance == "" {
		var b [8]byte
		rand.Read(b[:])
		s.instance = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(s.instance, " \t\r\n") {
		return nil, fmt.Errorf("redisstore: instance %q contains white space", s.instance)
	}
	if s.prefix == "" {
		s.prefix = defaultPrefix
	}
	if s.now = cfg.Now; s.now == nil {
		s.now = time.Now
	}
	s.rdb = redis.NewClient(opt)
	return s, nil
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping %s: %w", s.rdb.Options().Addr, err)
	}
	return nil
}

// Close ends the subscriptions, waits for their goroutines and closes the
// connections. The Store must not be used after; a second Close does
// nothing.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.wg.Wait()
		err = s.rdb.Close()
	})
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

func (s *Store) key(parts ...string) string {
	n := len(s.prefix)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, s.prefix...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return string(b)
}
