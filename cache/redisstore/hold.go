package redisstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// holdBlobs checks that every blob has its meta and all the chunks the
// meta counts, and if so sets the blobs' times in the blobs set to now, in
// one step: GC, whose removals check the time again atomically, then
// leaves them for its grace. Blobs that are not in the set (put by an
// older version, never collected) are not added. It returns 0, or the
// position (from 1) of the first blob missing.
//
// KEYS: blobs set, then the metas. ARGV: now in ms, then the hex sums, in
// the order of the metas.
var holdBlobs = redis.NewScript(`
for i = 2, #KEYS do
	local m = redis.call("GET", KEYS[i])
	if not m then return i - 1 end
	local sp = string.find(m, " ", 1, true)
	local n = sp and tonumber(string.sub(m, sp + 1))
	if not n then return i - 1 end
	for c = 0, n - 1 do
		if redis.call("EXISTS", KEYS[i] .. ":" .. c) == 0 then return i - 1 end
	end
end
for i = 2, #ARGV do
	redis.call("ZADD", KEYS[1], "XX", ARGV[1], ARGV[i])
end
return 0
`)

// Hold checks that Redis holds every blob of sums whole, every chunk, and
// refreshes their times for GC, in one step, for a response that streams
// a file from them (cache.Cache.Hold: a retained file the state directory
// dropped): from then on GC leaves them for Config.Grace (1h by default),
// longer than a response may take (the server's WriteTimeout, 30m by
// default). key names the file in errors. It fails with an error wrapping
// fs.ErrNotExist when a blob or a chunk is missing. The release it returns
// does nothing: the hold ends with the grace. Eviction by Redis itself
// (maxmemory) is not held off; a blob so lost mid-response cuts it.
func (s *Store) Hold(ctx context.Context, key [32]byte, sums [][32]byte) (func(), error) {
	if len(sums) == 0 {
		return func() {}, nil
	}
	keys := make([]string, 0, len(sums)+1)
	args := make([]any, 0, len(sums)+1)
	keys = append(keys, s.blobsKey())
	args = append(args, strconv.FormatInt(s.now().UnixMilli(), 10))
	for _, sum := range sums {
		keys = append(keys, s.metaKey(sum))
		args = append(args, hex.EncodeToString(sum[:]))
	}
	missing, err := holdBlobs.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return nil, fmt.Errorf("redisstore: hold %x: %w", key[:8], err)
	}
	if missing > 0 {
		sum := sums[missing-1]
		return nil, fmt.Errorf("redisstore: hold %x: blob %x: %w", key[:8], sum[:8], fs.ErrNotExist)
	}
	return func() {}, nil
}
