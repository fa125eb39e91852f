package main

import (
	"context"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
)

// newValidator makes the node's validator for cfg's [validate] table and
// gives it the heads the cache holds, so that its first run validates what
// is served. The validator reads files only through the cache.
func (n *node) newValidator(cfg *conf.Config) error {
	vc := cfg.Validate
	fetch, closeFetch, err := taFetcherPEM(vc.CAPEM)
	if err != nil {
		return err
	}
	n.closeTA = closeFetch
	n.valid, err = validate.New(validate.Config{
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
	return nil
}

// store returns the Store the follower of the repository called name
// publishes into: the cache, through the validator when there is one.
func (n *node) store(name string) follow.Store {
	if n.valid == nil {
		return n.cache
	}
	return n.valid.Store(name, n.cache)
}
