package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Load reads the heads of the lower tiers and installs them with their
// blobs, so that a restarted node serves at once. For each repository it
// takes the most recent head (by Time; the nearer tier on a tie) that is
// newer than the one in memory. A head whose blobs cannot be read is skipped
// and reported in the error; the others are loaded.
//
// Load installs every head the tiers hold, also those of repositories the
// node does not serve (removed from its configuration, or another
// deployment's in a shared Redis), and pins their blobs: a node that knows
// its repositories calls LoadRepos.
func (c *Cache) Load(ctx context.Context) error {
	return c.load(ctx, nil)
}

// LoadRepos is Load for the heads of repos (head keys, follow.Config.Repo)
// only; the heads of other repositories are left in the tiers.
func (c *Cache) LoadRepos(ctx context.Context, repos []string) error {
	want := make(map[string]bool, len(repos))
	for _, r := range repos {
		want[r] = true
	}
	return c.load(ctx, want)
}

// load loads the heads of the repositories in want, or all if want is nil.
func (c *Cache) load(ctx context.Context, want map[string]bool) error {
	var errs []error
	best := make(map[string]*Head)
	for i, t := range c.tiers {
		heads, err := t.Heads(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("cache: load heads of tier %d: %w", i, err))
			continue
		}
		for repo, h := range heads {
			if want != nil && !want[repo] {
				continue
			}
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
