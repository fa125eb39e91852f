package main

import (
	"fmt"
	"reflect"

	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// pullClients are the pull-through clients of a node's repositories, by
// name. Each is made from its repository's own upstream configuration
// (ca_file, caps, timeouts, fetch_from), as its follower's is: no
// repository's CA is trusted for another's origin, and pull-through
// reaches the origin where the follower does. The server does not share
// the follower's client because the follower's lifecycle (stopped and
// restarted on reload, owned by the fleet with Redis) is not the
// server's; a reload keeps the client of a repository whose
// configuration did not change, so that the server keeps its pulled files
// and counters (proxy.Server.SetRepos compares clients).
type pullClients map[string]pullClient

type pullClient struct {
	cfg    upstream.Config
	client *upstream.Client
}

// pullUpstream returns the configuration of r's pull-through client.
func pullUpstream(r *conf.Repository) upstream.Config {
	ucfg := r.Upstream()
	ucfg.UserAgent = "rrdp-proxy/" + Version()
	return ucfg
}

// pullLimits returns the limits pull-through decodes r's origin
// notification with: its follower's.
func pullLimits(cfg *conf.Config, r *conf.Repository) rrdpxml.Limits {
	fc := cfg.Follow(r)
	lim := fc.Limits
	lim.AllowHTTP = lim.AllowHTTP || fc.AllowHTTP // as follow.New does
	return lim
}

// update returns the clients for the repositories of cfg: those of p
// whose configuration did not change, new ones for the others. p is left
// as it is; on error the new clients are closed.
func (p pullClients) update(cfg *conf.Config) (pullClients, error) {
	next := make(pullClients, len(cfg.Repositories))
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		ucfg := pullUpstream(r)
		if old, ok := p[r.Name]; ok && reflect.DeepEqual(old.cfg, ucfg) {
			next[r.Name] = old
			continue
		}
		c, err := upstream.New(ucfg)
		if err != nil {
			next.closeExcept(p)
			return nil, fmt.Errorf("repository %q: pull-through client: %w", r.Name, err)
		}
		next[r.Name] = pullClient{ucfg, c}
	}
	return next, nil
}

// closeExcept closes the clients of p that keep does not hold. Closing
// ends only idle connections: a pull still under way with a client
// finishes.
func (p pullClients) closeExcept(keep pullClients) {
	for name, pc := range p {
		if k, ok := keep[name]; !ok || k.client != pc.client {
			pc.client.Close()
		}
	}
}
