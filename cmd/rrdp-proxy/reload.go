package main

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// startRepos makes the followers and the server match the repositories of
// cfg: followers of repositories that are new or whose table changed start
// (from the head the cache holds, so they fetch only what changed), those of
// repositories that went or changed stop, and the server serves the new
// list. Nothing changes when an error is returned. n.mu is held.
func (n *node) startRepos(cfg *conf.Config) error {
	type plan struct {
		repo *conf.Repository
		fc   follow.Config // fc.Base is the repository's base
	}
	keep := make(map[string]*follower)
	var plans []plan
	discard := func() {
		for _, p := range plans {
			p.fc.Client.Close()
		}
	}
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		base, err := baseURI(cfg, r)
		if err != nil {
			discard()
			return err
		}
		if old := n.repos[r.Name]; old != nil && old.base == base && reflect.DeepEqual(old.repo, *r) {
			keep[r.Name] = old
			continue
		}
		fc, err := n.followConfig(cfg, r)
		if err != nil {
			discard()
			return err
		}
		plans = append(plans, plan{r, fc})
	}
	pulls, err := n.pulls.update(cfg)
	if err != nil {
		discard()
		return err
	}
	repos, err := n.serverRepos(cfg, pulls)
	if err == nil {
		err = n.srv.SetRepos(repos)
	}
	if err != nil {
		discard()
		pulls.closeExcept(n.pulls)
		return err
	}
	n.pulls.closeExcept(pulls)
	n.pulls = pulls
	// Stop the followers of repositories that went or changed, and wait
	// for them: the successor of a changed one continues from its last
	// head, and two followers never publish one repository at once.
	next := make(map[string]*follower, len(cfg.Repositories))
	for name, old := range n.repos {
		if keep[name] != old {
			old.cancel()
			<-old.done
			n.log.Info("repository stopped", "repo", name)
			if n.valid != nil && !slices.ContainsFunc(cfg.Repositories, func(r conf.Repository) bool { return r.Name == name }) {
				n.valid.Forget(old.repo.Key()) // validated without it from now on
			}
		}
	}
	maps.Copy(next, keep)
	if n.valid != nil {
		n.valid.SetCompact(n.compactRepos(cfg)) // the formats are live
	}
	for _, p := range plans {
		fc := p.fc
		fc.Store = n.store(p.repo.Name)
		fc.Blobs = n.cache.Blob
		old := n.repos[p.repo.Name]
		if h := n.cache.Head(p.repo.Key()); h != nil && (old == nil || old.base == fc.Base) {
			// A head published under another base names other URIs:
			// the follower then starts afresh.
			fc.Start = h
		}
		f, err := follow.New(fc)
		if err != nil {
			// The server routes the repository and /readyz reports it
			// missing; the next reload may fix it.
			fc.Client.Close()
			n.log.Error("repository not followed", "repo", p.repo.Name, "err", err)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		fl := &follower{repo: *p.repo, base: fc.Base, f: f, client: fc.Client, cancel: cancel, done: make(chan struct{})}
		n.wg.Go(func() {
			defer close(fl.done)
			defer fl.client.Close()
			fl.f.Run(ctx)
		})
		next[p.repo.Name] = fl
		from := "nothing"
		if fc.Start != nil {
			from = fmt.Sprintf("serial %d", fc.Start.Serial)
		}
		n.log.Info("repository started", "repo", p.repo.Name, "origin", p.repo.Origin, "base", fc.Base, "from", from)
	}
	n.statsMu.Lock()
	n.repos = next
	n.statsMu.Unlock()
	return nil
}

// stats returns the counters of the follower of the repository called
// name, for the server's metrics and status page.
func (n *node) stats(name string) follow.Stats {
	n.statsMu.RLock()
	f := n.repos[name]
	n.statsMu.RUnlock()
	if f == nil {
		return follow.Stats{}
	}
	return f.f.Stats()
}

// Reload applies cfg, a configuration loaded again (SIGHUP), as far as it
// can without a restart:
//
//   - live: the repositories (added, removed, or changed: their followers
//     start and stop, the server's routes follow), server.mirror_base (the
//     mirror repositories move), server.log_level, and the TLS certificate
//     and key (read again from their files: new handshakes get the new
//     pair, connections open keep theirs); the access log file is reopened
//     (log rotation);
//   - only at the next start, and logged as such: server.listen,
//     server.tls_listen, the server's timeouts and connection limits,
//     notification_max_age, node, log_format, admin_listen, pprof and the
//     access log settings (the listeners and the HTTP server are made
//     once); the [cache] table (memory budget, state_dir, Redis: the tiers
//     are opened once); and, with Redis, the repositories too (the fleet
//     node owns the followers and its cache, and the pull-through clients
//     stay as they were).
//
// The configuration the node keeps is cfg with the restart-only part of
// the running one, so that the next reload compares with what is in
// force: a change that needs a restart is reported at every reload until
// the restart, and a change reverted is not reported. On error nothing
// changes and the old configuration stays in force.
func (n *node) Reload(cfg *conf.Config) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return errStopped
	}
	old := n.cfg
	for _, key := range restartKeys(old, cfg) {
		n.log.Warn("configuration change needs a restart: ignored", "key", key)
	}
	if n.fleet != nil {
		if !reflect.DeepEqual(old.Repositories, cfg.Repositories) || old.Server.MirrorBase != cfg.Server.MirrorBase {
			n.log.Warn("configuration change needs a restart with redis: ignored", "key", "repository")
		}
	} else if err := n.startRepos(cfg); err != nil {
		return err
	}
	if n.opts.Level != nil {
		n.opts.Level.Set(cfg.Server.Level())
	}
	if c := cfg.Server.Certificate; c != nil && n.cert.Load() != nil {
		n.cert.Store(c)
	}
	if n.access != nil {
		if err := n.access.Reopen(); err != nil {
			n.log.Error("access log not reopened: writing to the old file", "err", err)
		}
	}
	n.cfg = inForce(old, cfg, n.fleet != nil)
	return nil
}

// inForce returns the configuration in force after a reload from old to
// cfg: cfg, with the settings that take effect only at a restart taken
// from old (restartKeys lists the same).
func inForce(old, cfg *conf.Config, fleet bool) *conf.Config {
	c := *cfg
	s, o := &c.Server, &old.Server
	s.Listen, s.TLSListen = o.Listen, o.TLSListen
	s.ReadTimeout, s.WriteTimeout, s.IdleTimeout = o.ReadTimeout, o.WriteTimeout, o.IdleTimeout
	s.MaxConns, s.MaxConnsPerIP = o.MaxConns, o.MaxConnsPerIP
	s.NotificationMaxAge, s.Node, s.LogFormat = o.NotificationMaxAge, o.Node, o.LogFormat
	s.AdminListen, s.PProf, s.AccessLog, s.AccessLogFile = o.AdminListen, o.PProf, o.AccessLog, o.AccessLogFile
	c.Cache, c.Cache.Retention = old.Cache, cfg.Cache.Retention // retention is the repositories' default: live
	c.Validate, c.Compact = old.Validate, old.Compact           // the validator is made once
	if fleet {
		c.Repositories, s.MirrorBase = old.Repositories, o.MirrorBase
	}
	return &c
}

// restartKeys lists the keys that differ between a and b and take effect
// only at the next start.
func restartKeys(a, b *conf.Config) []string {
	var keys []string
	diff := func(key string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			keys = append(keys, key)
		}
	}
	s, t := &a.Server, &b.Server
	diff("validate", a.Validate, b.Validate)
	diff("compact", a.Compact, b.Compact)
	diff("server.listen", s.Listen, t.Listen)
	diff("server.tls_listen", s.TLSListen, t.TLSListen)
	diff("server.read_timeout", s.ReadTimeout, t.ReadTimeout)
	diff("server.write_timeout", s.WriteTimeout, t.WriteTimeout)
	diff("server.idle_timeout", s.IdleTimeout, t.IdleTimeout)
	diff("server.max_conns", s.MaxConns, t.MaxConns)
	diff("server.max_conns_per_ip", s.MaxConnsPerIP, t.MaxConnsPerIP)
	diff("server.notification_max_age", s.NotificationMaxAge, t.NotificationMaxAge)
	diff("server.node", s.Node, t.Node)
	diff("server.log_format", s.LogFormat, t.LogFormat)
	diff("server.admin_listen", s.AdminListen, t.AdminListen)
	diff("server.pprof", s.PProf, t.PProf)
	diff("server.access_log", s.AccessLog, t.AccessLog)
	diff("server.access_log_file", s.AccessLogFile, t.AccessLogFile)
	diff("cache.memory", a.Cache.Memory, b.Cache.Memory)
	diff("cache.state_dir", a.Cache.StateDir, b.Cache.StateDir)
	diff("cache.disk", a.Cache.DiskMax, b.Cache.DiskMax)
	diff("cache.spill_dir", a.Cache.Spill(), b.Cache.Spill())
	diff("cache.redis", a.Cache.Redis != nil, b.Cache.Redis != nil)
	if a.Cache.Redis != nil && b.Cache.Redis != nil {
		x, y := *a.Cache.Redis, *b.Cache.Redis
		x.RootCAs, y.RootCAs = nil, nil // pools from one file differ as pointers
		diff("cache.redis", x, y)
	}
	return keys
}
