package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a node's hold on a repository: while it holds it, the node polls
// the origin and the others follow its head. Token is the fencing token,
// larger for every new holder of the repository; Instance is the Store's
// (Config.Instance), so that two processes configured with one node name
// are two holders. PutHeadFenced checks the whole lease: token, node and
// instance.
type Lease struct {
	Repo     string
	Node     string
	Instance string
	Token    uint64
}

// value is the lease key's value: "<token> <node> <instance>".
func (l Lease) value() string {
	return strconv.FormatUint(l.Token, 10) + " " + l.holder()
}

func (l Lease) holder() string { return l.Node + " " + l.Instance }

// holderNode returns the node name of a lease key's holder part
// ("<node> <instance>").
func holderNode(h string) string {
	if i := strings.LastIndexByte(h, ' '); i >= 0 {
		return h[:i]
	}
	return h
}

// acquire takes the lease if free, with a new token, or extends it if the
// holder ("<node> <instance>") already holds it. It returns the token, or
// nil if another holds it. The new token is above the fence, above the
// token of the stored head and above ARGV[3], the highest token the
// caller has seen, so that tokens never go backwards when Redis lost the
// fence key (eviction, a failover to a replica behind, a restart with an
// empty data set).
//
// KEYS: lease, fence, head. ARGV: holder, ttl in ms, floor.
var acquire = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then
	local sp = string.find(v, " ", 1, true)
	if sp and string.sub(v, sp + 1) == ARGV[1] then
		redis.call("PEXPIRE", KEYS[1], ARGV[2])
		return string.sub(v, 1, sp - 1)
	end
	return false
end
local t = redis.call("INCR", KEYS[2])
local floor = tonumber(ARGV[3])
if floor and floor >= t then
	t = floor + 1
	redis.call("SET", KEYS[2], string.format("%d", t))
end
local h = redis.call("GET", KEYS[3])
if h then
	local ok, r = pcall(cjson.decode, h)
	if ok and type(r) == "table" then
		local ht = tonumber(r["token"])
		if ht and ht >= t then
			t = ht + 1
			redis.call("SET", KEYS[2], string.format("%d", t))
		end
	end
end
local ts = string.format("%d", t)
redis.call("SET", KEYS[1], ts .. " " .. ARGV[1], "PX", ARGV[2])
return ts
`)

// renew extends the lease if it holds ARGV[1]; returns 1 or 0.
//
// KEYS: lease. ARGV: value, ttl in ms.
var renew = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	return 1
end
return 0
`)

// deleteIf deletes KEYS[1] if it holds ARGV[1] (a lease, a release
// request); returns 1 or 0.
//
// KEYS: lease. ARGV: value.
var deleteIf = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	redis.call("DEL", KEYS[1])
	return 1
end
return 0
`)

// Acquire tries to take repo's lease for node for ttl (at least 1ms). It
// reports false, with no error, when another node holds it. A node that
// already holds it keeps its token and the TTL starts again. Each new
// holder gets a larger token than every holder before, and than the token
// the stored head was written with, even if Redis lost the fence key. The
// holder is node and this Store's Config.Instance: another process with
// the same node name is another holder. New tokens are also above every
// token this Store has seen for repo (its own leases, the heads it read),
// so that a Redis that comes back empty does not hand out 1 again while a
// node of the fleet lives.
func (s *Store) Acquire(ctx context.Context, repo, node string, ttl time.Duration) (Lease, bool, error) {
	if node == "" {
		return Lease{}, false, fmt.Errorf("redisstore: acquire lease of %s: empty node", repo)
	}
	if ttl < time.Millisecond {
		return Lease{}, false, fmt.Errorf("redisstore: acquire lease of %s: ttl %v below 1ms", repo, ttl)
	}
	l := Lease{Repo: repo, Node: node, Instance: s.instance}
	v, err := acquire.Run(ctx, s.rdb, []string{s.leaseKey(repo), s.fenceKey(repo), s.headKey(repo)},
		l.holder(), ttl.Milliseconds(), s.seenToken(repo)).Text()
	if errors.Is(err, redis.Nil) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("redisstore: acquire lease of %s: %w", repo, err)
	}
	tok, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return Lease{}, false, fmt.Errorf("redisstore: acquire lease of %s: token %q: %w", repo, v, err)
	}
	l.Token = tok
	s.sawToken(repo, tok)
	return l, true, nil
}

// sawToken records that a fencing token of repo was in use.
func (s *Store) sawToken(repo string, tok uint64) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	if s.tokens == nil {
		s.tokens = make(map[string]uint64)
	}
	if tok > s.tokens[repo] {
		s.tokens[repo] = tok
	}
}

// seenToken returns the highest fencing token of repo seen, or 0.
func (s *Store) seenToken(repo string) uint64 {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	return s.tokens[repo]
}

// Renew extends l for ttl from now, or returns an error wrapping ErrNotHeld
// if l expired or another node holds the lease.
func (s *Store) Renew(ctx context.Context, l Lease, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redisstore: renew lease of %s: ttl %v below 1ms", l.Repo, ttl)
	}
	n, err := renew.Run(ctx, s.rdb, []string{s.leaseKey(l.Repo)}, l.value(), ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: renew lease of %s: %w", l.Repo, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: renew lease of %s by %s token %d: %w", l.Repo, l.Node, l.Token, ErrNotHeld)
	}
	return nil
}

// Release gives l up, so that another node can take it at once. It returns
// an error wrapping ErrNotHeld if l had expired or was taken over.
func (s *Store) Release(ctx context.Context, l Lease) error {
	n, err := deleteIf.Run(ctx, s.rdb, []string{s.leaseKey(l.Repo)}, l.value()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: release lease of %s: %w", l.Repo, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: release lease of %s by %s token %d: %w", l.Repo, l.Node, l.Token, ErrNotHeld)
	}
	return nil
}

func (s *Store) nodesKey() string { return s.key("nodes") }

// Beat records node as alive for ttl: Fleet counts it until then. Nodes
// silent for ten times ttl are dropped from the record.
func (s *Store) Beat(ctx context.Context, node string, ttl time.Duration) error {
	now := s.now()
	pipe := s.rdb.TxPipeline()
	pipe.ZAdd(ctx, s.nodesKey(), redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: node})
	pipe.ZRemRangeByScore(ctx, s.nodesKey(), "-inf", strconv.FormatInt(now.Add(-10*ttl).UnixMilli(), 10))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: beat of %s: %w", node, err)
	}
	return nil
}

// Fleet returns the nodes alive (Beat) or holding the lease of a
// repository that has a head, with the number of leases each holds. It
// reads two keys and the leases of the repositories, never the keyspace.
func (s *Store) Fleet(ctx context.Context) (map[string]int, error) {
	m := make(map[string]int)
	alive, err := s.rdb.ZRangeByScore(ctx, s.nodesKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(s.now().UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list nodes: %w", err)
	}
	for _, n := range alive {
		m[n] += 0
	}
	repos, err := s.rdb.SMembers(ctx, s.reposKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list leases: %w", err)
	}
	if len(repos) == 0 {
		return m, nil
	}
	keys := make([]string, len(repos))
	for i, r := range repos {
		keys[i] = s.leaseKey(r)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list leases: %w", err)
	}
	for _, v := range vals {
		if str, ok := v.(string); ok {
			if _, h, ok := strings.Cut(str, " "); ok {
				m[holderNode(h)]++
			}
		}
	}
	return m, nil
}

// Holder returns the node holding repo's lease, or "" if it is free.
func (s *Store) Holder(ctx context.Context, repo string) (string, error) {
	v, err := s.rdb.Get(ctx, s.leaseKey(repo)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: lease of %s: %w", repo, err)
	}
	tok, h, _ := strings.Cut(v, " ")
	if n, err := strconv.ParseUint(tok, 10, 64); err == nil {
		s.sawToken(repo, n)
	}
	return holderNode(h), nil
}
