package redisstore

import (
	"context"
	"fmt"
	"time"
)

// maxStatus caps a status value, read back from a server other nodes write
// to: a status is a few hundred bytes of JSON.
const maxStatus = 64 << 10

func (s *Store) statusKey(repo string) string { return s.key("status:", repo) }

// PutStatus stores b, the status of repo's polling as the node polling it
// reports it (opaque to the store: the fleet writes JSON), for ttl: a
// status nobody refreshes disappears with the node that wrote it. Key
// status:<repo>.
func (s *Store) PutStatus(ctx context.Context, repo string, b []byte, ttl time.Duration) error {
	if len(b) > maxStatus {
		return fmt.Errorf("redisstore: put status of %s: %d bytes, over %d", repo, len(b), maxStatus)
	}
	if err := s.rdb.Set(ctx, s.statusKey(repo), b, ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: put status of %s: %w", repo, err)
	}
	return nil
}

// Statuses returns the statuses PutStatus stored for repos, in one round
// trip; a repository without one (never written, or expired) is absent.
func (s *Store) Statuses(ctx context.Context, repos []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(repos))
	if len(repos) == 0 {
		return out, nil
	}
	keys := make([]string, len(repos))
	for i, r := range repos {
		keys[i] = s.statusKey(r)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: read statuses: %w", err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok && len(str) <= maxStatus {
			out[repos[i]] = []byte(str)
		}
	}
	return out, nil
}
