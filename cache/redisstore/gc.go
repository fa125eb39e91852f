package redisstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/irpki/rrdp-proxy/cache"
)

// removeBlob removes one blob, its meta and its chunks, and its entry in
// the blobs set, unless its time there is after the cutoff (put, or named
// by a head, within the grace). Without a meta it removes chunks 0, 1, ...
// up to the first missing one: those a reader left when it found the blob
// damaged. It returns the size the meta gave, or -1 when it kept the blob.
//
// KEYS: blobs set, meta. ARGV: hex sum, cutoff in ms, chunk key prefix.
var removeBlob = redis.NewScript(`
local t = redis.call("ZSCORE", KEYS[1], ARGV[1])
if t and tonumber(t) > tonumber(ARGV[2]) then return -1 end
local m = redis.call("GET", KEYS[2])
local size, n = 0, 0
if m then
	local sp = string.find(m, " ", 1, true)
	if sp then
		size = tonumber(string.sub(m, 1, sp - 1)) or 0
		n = tonumber(string.sub(m, sp + 1)) or 0
	end
end
redis.call("DEL", KEYS[2])
local i = 0
while true do
	local gone = redis.call("DEL", ARGV[3] .. i)
	if gone == 0 and i >= n then break end
	i = i + 1
end
redis.call("ZREM", KEYS[1], ARGV[1])
return size
`)

// GCStats says what one GC did.
type GCStats struct {
	// Kept counts the blobs due by time that a head still needs.
	Kept, Removed int
	RemovedBytes  int64
	// BadHeads counts the heads that could not be decoded, skipped
	// (logged with their keys); Headless the repositories of the set
	// with no head, for which GC removed nothing (named in its error).
	BadHeads, Headless int
}

// GC removes the blobs that no head needs, those no head names or names
// only as a file whose retention ended, once Config.Grace has passed since
// they were last put or last named by a PutHead. Every node of a fleet may
// run it at the same time: each removal is one atomic step that checks the
// blob's time again, and PutHead checks its blobs in the same step as it
// writes the head, so a head never names a removed blob.
//
// A head that cannot be decoded is skipped (logged, counted in BadHeads):
// no node can serve from it. But while a repository of the set has no head
// at all (its key evicted, or deleted without DeleteHead), GC removes
// nothing and returns an error wrapping ErrHeadless naming it: its current
// blobs are unknown, and its holder writes the head again (fleet's
// reconcile). A repository that left the configuration is removed with
// DeleteHead.
//
// Only blobs in the blobs set are collected: those put by this version.
func (s *Store) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	cutoff := s.now().Add(-s.grace).UnixMilli()
	due, err := s.rdb.ZRangeByScore(ctx, s.blobsKey(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(cutoff, 10)}).Result()
	if err != nil {
		return st, fmt.Errorf("redisstore: gc: list blobs: %w", err)
	}
	if len(due) == 0 {
		return st, nil
	}
	// Heads are read after the due blobs: a head written since names
	// blobs whose time it refreshed, which the removal checks.
	hs, err := s.heads(ctx)
	if err != nil {
		return st, fmt.Errorf("redisstore: gc: %w", err)
	}
	st.BadHeads, st.Headless = len(hs.bad), len(hs.missing)
	if len(hs.missing) > 0 {
		return st, fmt.Errorf("redisstore: gc: repositories %q have no head: %w", hs.missing, ErrHeadless)
	}
	keep := make(map[string]bool)
	for _, h := range hs.heads {
		// A part list that cannot be read keeps nothing of its parts: the
		// file cannot be served from Redis without it anyway.
		for _, sum := range cache.NeededLax(ctx, h, s.now(), s.GetBlob) {
			keep[hex.EncodeToString(sum[:])] = true
		}
	}
	for _, m := range due {
		if keep[m] {
			st.Kept++
			continue
		}
		b, err := hex.DecodeString(m)
		if err != nil || len(b) != 32 {
			// Not a sum: drop the entry only.
			if err := s.rdb.ZRem(ctx, s.blobsKey(), m).Err(); err != nil {
				return st, fmt.Errorf("redisstore: gc: %w", err)
			}
			continue
		}
		sum := [32]byte(b)
		size, err := removeBlob.Run(ctx, s.rdb, []string{s.blobsKey(), s.metaKey(sum)},
			m, cutoff, s.metaKey(sum)+":").Int64()
		if err != nil {
			return st, fmt.Errorf("redisstore: gc: remove blob %x: %w", sum[:8], err)
		}
		if size >= 0 {
			st.Removed++
			st.RemovedBytes += size
		}
	}
	return st, nil
}

// Run collects garbage (GC) every Config.GCInterval until ctx ends, logging
// failures (Redis may be down for a while), and returns ctx's error.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.gcInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			st, err := s.GC(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.logger.Warn("redisstore: gc failed", "err", err)
				continue
			}
			if st.Removed > 0 {
				s.logger.Info("redisstore: gc", "removed", st.Removed, "bytes", st.RemovedBytes, "kept", st.Kept)
			}
		}
	}
}
