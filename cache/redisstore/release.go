package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxRelease caps a release request read back: a few hundred bytes of
// JSON.
const maxRelease = 4 << 10

func (s *Store) releaseKey(repo string) string { return s.key("release:", repo) }
func (s *Store) releasesChannel() string       { return s.key("releases") }

// RequestRelease stores b, an operator's request to release the serial
// the validation gate holds for repo (opaque to the store: the fleet
// writes JSON), for ttl, replacing an earlier one, and announces repo on
// the releases channel (SubscribeReleases), in one transaction. Key
// release:<repo>.
func (s *Store) RequestRelease(ctx context.Context, repo string, b []byte, ttl time.Duration) error {
	if len(b) > maxRelease {
		return fmt.Errorf("redisstore: request release of %s: %d bytes, over %d", repo, len(b), maxRelease)
	}
	pipe := s.rdb.TxPipeline()
	pipe.Set(ctx, s.releaseKey(repo), b, ttl)
	pipe.Publish(ctx, s.releasesChannel(), repo)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: request release of %s: %w", repo, err)
	}
	return nil
}

// ReleaseRequest returns the request RequestRelease stored for repo, nil
// when there is none (never made, taken, or expired).
func (s *Store) ReleaseRequest(ctx context.Context, repo string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.releaseKey(repo)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("redisstore: read release request of %s: %w", repo, err)
	case len(b) > maxRelease:
		return nil, fmt.Errorf("redisstore: release request of %s: %d bytes, over %d", repo, len(b), maxRelease)
	}
	return b, nil
}

// TakeReleaseRequest removes repo's request if it is still b, and
// reports whether it did: of two nodes honouring one request, one takes
// it, and a request made meanwhile stays.
func (s *Store) TakeReleaseRequest(ctx context.Context, repo string, b []byte) (bool, error) {
	n, err := deleteIf.Run(ctx, s.rdb, []string{s.releaseKey(repo)}, b).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: take release request of %s: %w", repo, err)
	}
	return n == 1, nil
}
