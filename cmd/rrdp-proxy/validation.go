package main

import (
	"context"
	"fmt"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

// newValidator makes the node's validator for cfg's [validate] table and
// gives it the heads the cache holds, so that its first run validates what
// is served (a fleet's node loads its heads in Run, and gives them then:
// fleet.Config.Installed). The validator reads files only through the
// cache; in a fleet, its gate asks the fleet about releases queued in
// Redis for this node (fleet.Node.Released).
func (n *node) newValidator(cfg *conf.Config) error {
	vc := cfg.Validate
	fetch, closeFetch, err := taFetcherPEM(vc.CAPEM)
	if err != nil {
		return err
	}
	n.closeTA = closeFetch
	cc, err := n.compactConfig(cfg)
	if err != nil {
		return err
	}
	var released func(context.Context, string, *follow.Head) (string, bool)
	if n.fleet != nil {
		released = n.fleet.Released
	}
	n.valid, err = validate.New(validate.Config{
		Compact:  cc,
		TALs:     vc.TrustAnchors,
		TALFiles: vc.TALs,
		// A composite snapshot (fragments) is assembled from its parts.
		Open: func(ctx context.Context, f follow.File) ([]byte, error) {
			return cache.ReadFile(ctx, &f, n.cache.Blob)
		},
		Gate:     vc.Gate,
		Rules:    validate.Rules{MaxVRPLoss: vc.MaxVRPLoss, MaxASPALoss: vc.MaxASPALoss, CAInvalid: vc.CAInvalid},
		FetchTA:  fetch,
		Interval: vc.Interval.Duration,
		Released: released,
		Node:     cfg.Server.Node,
		Logger:   n.log.With("part", "validate"),
	})
	if err != nil {
		return err
	}
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		n.valid.Seed(r.Name, r.Key(), n.cache.Head(r.Key()))
	}
	n.compact = cc != nil
	n.valid.SetCompact(n.compactRepos(cfg))
	return nil
}

// compactConfig returns the validator's compact configuration for cfg's
// [compact] table, nil without one.
func (n *node) compactConfig(cfg *conf.Config) (*validate.Compact, error) {
	c := cfg.Compact
	if c == nil {
		return nil, nil
	}
	signer, err := compact.ParsePrivateKey(c.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("compact.key %s: %w", c.Key, err)
	}
	if c.RolloverPEM != nil {
		// Every signed file carries a signature by each key.
		next, err := compact.ParsePrivateKey(c.RolloverPEM)
		if err != nil {
			return nil, fmt.Errorf("compact.rollover_key %s: %w", c.RolloverKey, err)
		}
		signer = signer.With(next)
	}
	cc := &validate.Compact{Signer: signer, Store: n.cache, Head: n.compactHead, Retention: cfg.Cache.Retention.Duration,
		MaxDeltas: c.MaxDeltas, OmitCertificates: c.OmitCertificates}
	if n.fleet != nil {
		cc.Publish = n.fleet.Publishes // the lease holder alone signs
	}
	return cc, nil
}

// compactRepos returns the repositories of cfg that serve the compact
// format, none when the node does not publish it.
func (n *node) compactRepos(cfg *conf.Config) []validate.CompactRepo {
	if !n.compact {
		return nil
	}
	var out []validate.CompactRepo
	for i := range cfg.Repositories {
		if r := &cfg.Repositories[i]; r.Serves("compact") {
			out = append(out, validate.CompactRepo{Key: r.Key(), Name: r.Name})
		}
	}
	return out
}

// store returns the Store the follower of the repository called name
// publishes into: the cache, through the validator when there is one.
func (n *node) store(name string) follow.Store {
	if n.valid == nil {
		return n.cache
	}
	return n.valid.Store(name, n.cache)
}

// compactHead returns the stored compact head of key: the cache's, or,
// for a repository that started serving the format after the start (a
// reload), the one the state directory holds.
func (n *node) compactHead(key string) *follow.Head {
	if h := n.cache.Head(key); h != nil || n.fleet != nil {
		// A fleet node loads the compact heads in Run and installs
		// those the holder publishes; the status page asks here too.
		return h
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.cache.LoadRepos(ctx, []string{key}); err != nil {
		n.log.Warn("compact: the stored publication could not be loaded", "key", key, "err", err)
	}
	return n.cache.Head(key)
}
