package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// Load reads the heads of the lower tiers and installs them with their
// blobs, so that a restarted node serves at once. For each repository it
// takes the most recent head (by Time; the nearer tier on a tie) that is
// newer than the one in memory. A head whose blobs cannot be read is skipped
// and reported in the error; the others are loaded.
func (c *Cache) Load(ctx context.Context) error {
	var errs []error
	best := make(map[string]*follow.Head)
	for i, t := range c.tiers {
		heads, err := t.Heads(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("cache: load heads of tier %d: %w", i, err))
			continue
		}
		for repo, h := range heads {
			if b := best[repo]; b == nil || h.Time.After(b.Time) {
				best[repo] = h
			}
		}
	}
	repos := make([]string, 0, len(best))
	for r := range best {
		repos = append(repos, r)
	}
	slices.Sort(repos)
	for _, repo := range repos {
		h := best[repo]
		if cur := c.Head(repo); cur != nil && !h.Time.After(cur.Time) {
			continue
		}
		if err := c.install(ctx, repo, h, false); err != nil {
			errs = append(errs, fmt.Errorf("cache: load: %w", err))
		}
	}
	return errors.Join(errs...)
}
