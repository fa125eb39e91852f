package conf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// BaseURI returns the public URI of the directory under which r's files
// are served, ending in '/':
//
//   - reverse mode: base if set, else https://<hosts[0]><origin directory>/,
//     the origin's own paths under the public host name;
//   - mirror mode: <server.mirror_base><origin host><origin directory>/,
//     so https://rrdp.ripe.net/notification.xml mirrored under
//     https://mirror.example.net/ is https://mirror.example.net/rrdp.ripe.net/.
//
// r must come from a Config that Parse returned.
func (c *Config) BaseURI(r *Repository) string {
	u, err := url.Parse(r.Origin)
	if err != nil {
		return ""
	}
	dir := path.Dir(u.Path)
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	if r.Mode == ModeReverse {
		if r.Base != "" {
			return r.Base
		}
		if len(r.Hosts) == 0 {
			return ""
		}
		return "https://" + r.Hosts[0] + dir
	}
	return c.Server.MirrorBase + strings.ToLower(u.Host) + dir
}

// Route returns the proxy.Repo that serves r: name, origin, key, mode,
// base (BaseURI) and hosts; the caller adds Interval and Stats. r must come
// from a Config that Parse returned.
func (c *Config) Route(r *Repository) proxy.Repo {
	return proxy.Repo{Name: r.Name, Origin: r.Origin, Key: r.Key(), Mode: proxy.Mode(r.Mode),
		Base: c.BaseURI(r), Hosts: r.Hosts,
		Passthrough: r.Passthrough && r.Mode == ModeReverse, PassthroughPaths: r.PassthroughPaths, PassthroughMax: int64(r.PassthroughMax)}
}

// Key returns the key of r's head in the stores: its name. Every node of a
// fleet must give a repository the same name.
func (r *Repository) Key() string { return r.Name }

// Upstream returns the upstream client configuration of r. The caller sets
// UserAgent ("rrdp-proxy/<version>"); RootCAs stays nil (the system roots),
// CAPEM carries ca_file, and Origin and FetchFrom send the requests for
// the origin's scheme, host and port to fetch_from, if set.
func (r *Repository) Upstream() upstream.Config {
	minRate := int64(r.MinRate)
	if minRate == 0 {
		minRate = -1 // upstream: a negative MinRate turns the check off
	}
	return upstream.Config{
		ConnectTimeout:      r.ConnectTimeout.Duration,
		HeaderTimeout:       r.HeaderTimeout.Duration,
		NotificationTimeout: r.NotificationTimeout.Duration,
		SnapshotTimeout:     r.SnapshotTimeout.Duration,
		DeltaTimeout:        r.DeltaTimeout.Duration,
		MaxNotificationSize: int64(r.MaxNotificationSize),
		MaxSnapshotSize:     int64(r.MaxSnapshotSize),
		MaxDeltaSize:        int64(r.MaxDeltaSize),
		MinRate:             minRate,
		CAPEM:               r.CAPEM,
		Origin:              r.Origin,
		FetchFrom:           r.FetchFrom,
	}
}

// Follow returns the follower configuration of r. The daemon supplies
// Client, Store, Start, Blobs, OnChange, Seed, Now and Logger.
func (c *Config) Follow(r *Repository) follow.Config {
	return follow.Config{
		URL:        r.Origin,
		Repo:       r.Key(),
		Base:       c.BaseURI(r),
		AllowHTTP:  c.Server.AllowHTTPBase,
		Interval:   r.PollInterval.Duration,
		Jitter:     r.Jitter,
		MaxBackoff: r.MaxBackoff.Duration,
		Parallel:   r.Parallel,
		MaxDeltas:  r.MaxDeltas,
		Retention:  r.Retention.Duration,
		SpillDir:   c.Cache.Spill(),
	}
}

// Spill returns the directory of fetched bodies past the spill threshold:
// spill_dir, else state_dir/spill, else "" (the system's temporary
// directory). The state directory is on a disk the operator sized for the
// repositories, where the system's /tmp is often a small tmpfs.
func (c *Cache) Spill() string {
	switch {
	case c.SpillDir != "":
		return c.SpillDir
	case c.StateDir != "":
		return filepath.Join(c.StateDir, "spill")
	}
	return ""
}

// Config returns the cache configuration; the daemon supplies Tiers (the
// disk and Redis stores), Now and Logger.
func (c *Cache) Config() cache.Config {
	return cache.Config{MaxBytes: int64(c.Memory)}
}

// Disk returns the disk tier's configuration, and false without
// state_dir.
func (c *Cache) Disk() (diskstore.Config, bool) {
	if c.StateDir == "" {
		return diskstore.Config{}, false
	}
	return diskstore.Config{Dir: c.StateDir, MaxBytes: int64(c.DiskMax)}, true
}

// Config returns the Redis tier's configuration: the URL with username
// set, the password from the environment, and a TLS configuration that
// trusts tls_ca_file for rediss://. LeaseTTL is not part of it: the daemon
// passes it to Acquire and Renew.
func (r *Redis) Config() redisstore.Config {
	cfg := redisstore.Config{
		URL:          r.URL,
		Password:     r.Password,
		DialTimeout:  r.DialTimeout.Duration,
		ReadTimeout:  r.ReadTimeout.Duration,
		WriteTimeout: r.WriteTimeout.Duration,
		ChunkSize:    int(r.ChunkSize),
		Prefix:       r.Prefix,
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return cfg
	}
	if r.Username != "" {
		u.User = url.User(r.Username)
		cfg.URL = u.String()
	}
	if u.Scheme == "rediss" && r.RootCAs != nil {
		cfg.TLS = &tls.Config{RootCAs: r.RootCAs, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return cfg
}

// Level returns log_level as a slog level.
func (s *Server) Level() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// minMemoryLimit is the lowest memory_limit accepted: below it the
// collector would run without pause on any real repository.
const minMemoryLimit = 64 << 20

// SoftMemoryLimit returns memory_limit: auto, or else the limit in bytes
// (0 for off).
func (s *Server) SoftMemoryLimit() (limit int64, auto bool, err error) {
	switch s.MemoryLimit {
	case "auto":
		return 0, true, nil
	case "off":
		return 0, false, nil
	}
	var z Size
	if err := z.UnmarshalText([]byte(s.MemoryLimit)); err != nil {
		return 0, false, fmt.Errorf("want auto, off or a size such as \"3GiB\": %w", err)
	}
	if z < minMemoryLimit {
		return 0, false, fmt.Errorf("want at least %s (or off), got %s", Size(minMemoryLimit), z)
	}
	return int64(z), false, nil
}

// minGCHeadroom is the lowest gc_headroom accepted.
const minGCHeadroom = 16 << 20

// CollectorHeadroom returns gc_headroom: auto, or else the headroom in bytes (0
// for off).
func (s *Server) CollectorHeadroom() (headroom int64, auto bool, err error) {
	switch s.GCHeadroom {
	case "auto":
		return 0, true, nil
	case "off":
		return 0, false, nil
	}
	var z Size
	if err := z.UnmarshalText([]byte(s.GCHeadroom)); err != nil {
		return 0, false, fmt.Errorf("want auto, off or a size such as \"256MiB\": %w", err)
	}
	if z < minGCHeadroom {
		return 0, false, fmt.Errorf("want at least %s (or off), got %s", Size(minGCHeadroom), z)
	}
	return int64(z), false, nil
}

// Serves reports whether r is served in format ("xml" or "bin").
func (r *Repository) Serves(format string) bool {
	for _, f := range r.Formats {
		if f == format {
			return true
		}
	}
	return false
}
