package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/irpki/rrdp-proxy/cache"
)

// putHead sets the head, adds the repository to the set and announces it,
// atomically; with a lease (ARGV[4] not empty) only if the lease key holds
// exactly that value: token, node and instance. It also checks, in the same step, that the meta of every blob
// the head needs exists, and refreshes their time in the blobs set, so that
// GC, whose removals are atomic too, never takes a blob from under a head.
// It returns 1 when written, 0 when the token is stale, -1 when a blob is
// missing.
//
// KEYS: head, repos, lease, blobs set, then the metas. ARGV: record, repo,
// channel, lease value, now in ms, then the hex sums of the metas, in order.
var putHead = redis.NewScript(`
if ARGV[4] ~= "" and redis.call("GET", KEYS[3]) ~= ARGV[4] then return 0 end
for i = 5, #KEYS do
	if redis.call("EXISTS", KEYS[i]) == 0 then return -1 end
end
for i = 6, #ARGV do
	redis.call("ZADD", KEYS[4], ARGV[5], ARGV[i])
end
redis.call("SET", KEYS[1], ARGV[1])
redis.call("SADD", KEYS[2], ARGV[2])
redis.call("PUBLISH", ARGV[3], ARGV[2])
return 1
`)

// record is the stored form of a head. Token is the fencing token of the
// lease it was written under (0: PutHead), which Acquire keeps the next
// tokens above.
type record struct {
	Repo  string      `json:"repo"`
	Token uint64      `json:"token,omitempty"`
	Head  *cache.Head `json:"head"`
}

func (s *Store) headKey(repo string) string  { return s.key("head:", repo) }
func (s *Store) leaseKey(repo string) string { return s.key("lease:", repo) }
func (s *Store) fenceKey(repo string) string { return s.key("fence:", repo) }
func (s *Store) reposKey() string            { return s.key("repos") }
func (s *Store) blobsKey() string            { return s.key("blobs") }
func (s *Store) channel() string             { return s.key("heads") }

// PutHead switches repo to h and announces repo on the channel. It refuses
// a head naming a blob that is not stored, except files whose retention
// ended before now. It is not fenced: a follower holding a lease uses
// PutHeadFenced.
func (s *Store) PutHead(ctx context.Context, repo string, h *cache.Head) error {
	return s.putHead(ctx, repo, h, Lease{})
}

// PutHeadFenced is PutHead for the holder of lease l: it writes the head
// of l.Repo only if the lease key still holds l exactly (token, node and
// instance), and otherwise returns an error wrapping ErrNotHeld, so that a
// node whose lease expired while it synced cannot overwrite the head of
// the node that took over, even when Redis lost the fence key and handed
// the same token out again. The head records l.Token. A Lease that
// Acquire did not return (token 0) holds nothing.
func (s *Store) PutHeadFenced(ctx context.Context, l Lease, h *cache.Head) error {
	if l.Token == 0 {
		return fmt.Errorf("redisstore: put head of %s: a lease without a token: %w", l.Repo, ErrNotHeld)
	}
	return s.putHead(ctx, l.Repo, h, l)
}

// PutCompanionFenced is PutHeadFenced for a head that belongs to the
// repository of lease l without being its head: key is that repository's
// compact publication (cache.CompactKey of l.Repo), which only the holder
// of the repository's lease publishes. It is written, announced under
// key, only if the lease key still holds l exactly.
func (s *Store) PutCompanionFenced(ctx context.Context, l Lease, key string, h *cache.Head) error {
	if repo, ok := cache.CompactOf(key); !ok || repo != l.Repo {
		return fmt.Errorf("redisstore: put head of %s: not a companion of %s", key, l.Repo)
	}
	if l.Token == 0 {
		return fmt.Errorf("redisstore: put head of %s: a lease without a token: %w", key, ErrNotHeld)
	}
	return s.putHead(ctx, key, h, l)
}

// putHead writes the head of key; with a lease, fenced by the lease of
// l.Repo (key itself or the repository key is a companion of).
func (s *Store) putHead(ctx context.Context, repo string, h *cache.Head, l Lease) error {
	lease := ""
	if l.Token != 0 {
		lease = l.value()
	}
	if h == nil {
		return fmt.Errorf("redisstore: put head of %s: nil head", repo)
	}
	sums, err := s.needed(ctx, h)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %w", ErrMissing, err)
		}
		return fmt.Errorf("redisstore: put head of %s: %w", repo, err)
	}
	if err := s.haveBlobs(ctx, sums); err != nil {
		return fmt.Errorf("redisstore: put head of %s: %w", repo, err)
	}
	b, err := json.Marshal(record{Repo: repo, Token: l.Token, Head: h})
	if err != nil {
		return fmt.Errorf("redisstore: put head of %s: %w", repo, err)
	}
	keys := make([]string, 0, 4+len(sums))
	leaseRepo := repo
	if l.Token != 0 {
		leaseRepo = l.Repo
	}
	keys = append(keys, s.headKey(repo), s.reposKey(), s.leaseKey(leaseRepo), s.blobsKey())
	args := make([]any, 0, 5+len(sums))
	args = append(args, b, repo, s.channel(), lease, s.now().UnixMilli())
	for _, sum := range sums {
		keys = append(keys, s.metaKey(sum))
		args = append(args, hex.EncodeToString(sum[:]))
	}
	n, err := putHead.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: put head of %s: %w", repo, err)
	}
	switch n {
	case 0:
		return fmt.Errorf("redisstore: put head of %s: lease %q: %w", repo, lease, ErrNotHeld)
	case -1:
		// Removed by GC or damage since haveBlobs looked.
		return fmt.Errorf("redisstore: put head of %s: a blob it names is no longer stored: %w", repo, ErrMissing)
	}
	return nil
}

// needed returns the blobs h needs (cache.Needed): those of its files
// whose retention has not ended, and for a composite file its part list
// and parts, the list read from Redis.
func (s *Store) needed(ctx context.Context, h *cache.Head) ([][32]byte, error) {
	return cache.Needed(ctx, h, s.now(), s.GetBlob)
}

// Missing returns the sums of the blobs h needs (files whose retention has
// not ended) that are not stored: what a lease holder puts again before
// its head, after GC, an eviction, or a reader that found a blob damaged
// and removed its meta.
func (s *Store) Missing(ctx context.Context, h *cache.Head) ([][32]byte, error) {
	// A part list Redis lost is missing itself; its parts show once it
	// is put back (a repair asks again).
	sums := cache.NeededLax(ctx, h, s.now(), s.GetBlob)
	if len(sums) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(sums))
	for i, sum := range sums {
		cmds[i] = pipe.Exists(ctx, s.metaKey(sum))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstore: missing blobs of %s: %w", h.Repo, err)
	}
	var missing [][32]byte
	for i, c := range cmds {
		if c.Val() == 0 {
			missing = append(missing, sums[i])
		}
	}
	return missing, nil
}

// haveBlobs checks that the meta of every blob of sums is stored.
func (s *Store) haveBlobs(ctx context.Context, sums [][32]byte) error {
	if len(sums) == 0 {
		return nil
	}
	keys := make([]string, len(sums))
	for i, sum := range sums {
		keys[i] = s.metaKey(sum)
	}
	n, err := s.rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return err
	}
	if n == int64(len(keys)) {
		return nil
	}
	// Name one missing blob.
	for _, sum := range sums {
		n, err := s.rdb.Exists(ctx, s.metaKey(sum)).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("blob %x: %w", sum[:8], ErrMissing)
		}
	}
	return fmt.Errorf("%d of %d blobs: %w", int64(len(keys))-n, len(keys), ErrMissing)
}

// Heads returns the head of every repository, keyed by repository. A head
// that cannot be decoded is skipped, logged and counted (BadHeads): one
// damaged key does not hide the others.
func (s *Store) Heads(ctx context.Context) (map[string]*cache.Head, error) {
	hs, err := s.heads(ctx)
	if err != nil {
		return nil, err
	}
	return hs.heads, nil
}

// headSet is what heads read: the heads, and the repositories of the set
// whose head is missing or cannot be decoded.
type headSet struct {
	heads   map[string]*cache.Head
	missing []string
	bad     []string
}

func (s *Store) heads(ctx context.Context) (headSet, error) {
	repos, err := s.rdb.SMembers(ctx, s.reposKey()).Result()
	if err != nil {
		return headSet{}, fmt.Errorf("redisstore: list heads: %w", err)
	}
	hs := headSet{heads: make(map[string]*cache.Head, len(repos))}
	if len(repos) == 0 {
		return hs, nil
	}
	slices.Sort(repos)
	keys := make([]string, len(repos))
	for i, r := range repos {
		keys[i] = s.headKey(r)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return headSet{}, fmt.Errorf("redisstore: list heads: %w", err)
	}
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			// In the set, but the head key is gone: evicted, or
			// removed by hand without DeleteHead.
			hs.missing = append(hs.missing, repos[i])
			continue
		}
		var r record
		err := json.Unmarshal([]byte(str), &r)
		if err == nil && (r.Head == nil || r.Repo != repos[i]) {
			err = fmt.Errorf("names repository %q", r.Repo)
		}
		if err != nil {
			s.badHeads.Add(1)
			s.logger.Warn("redisstore: skipping a head that cannot be read", "key", keys[i], "err", err)
			hs.bad = append(hs.bad, repos[i])
			continue
		}
		hs.heads[r.Repo] = r.Head
	}
	return hs, nil
}

// BadHeads counts the heads Heads and GC skipped because they could not be
// decoded, since New.
func (s *Store) BadHeads() uint64 { return s.badHeads.Load() }

// DeleteHead removes repo's head and its entry in the set of repositories,
// atomically: what a deployment does when a repository leaves its
// configuration, so that no node loads the head again and GC collects its
// blobs after Config.Grace. Deleting a head that does not exist is not an
// error. A node that still follows repo writes its head again.
func (s *Store) DeleteHead(ctx context.Context, repo string) error {
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, s.headKey(repo))
	pipe.SRem(ctx, s.reposKey(), repo)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: delete head of %s: %w", repo, err)
	}
	return nil
}

// Head returns the head of repo, or nil if it has none: what a node that
// does not hold the lease reads when Subscribe announces repo.
func (s *Store) Head(ctx context.Context, repo string) (*cache.Head, error) {
	v, err := s.rdb.Get(ctx, s.headKey(repo)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get head of %s: %w", repo, err)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("redisstore: read head of %s: %w: %w", repo, ErrBadHead, err)
	}
	if r.Head == nil || r.Repo != repo {
		return nil, fmt.Errorf("redisstore: read head of %s: names repository %q: %w", repo, r.Repo, ErrBadHead)
	}
	s.sawToken(repo, r.Token)
	return r.Head, nil
}
