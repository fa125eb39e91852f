package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/irpki/rrdp-proxy/cache"
)

const (
	// batchBytes caps the chunk bytes one pipelined round trip carries,
	// so that a read or write timeout bounds a batch, not a whole
	// snapshot.
	batchBytes = 16 << 20
	// maxBlob caps the size a meta may claim, so that a damaged meta
	// cannot make GetBlob allocate without bound.
	maxBlob = 4 << 30
)

// errMeta: a blob's meta key does not hold "<size> <chunks>".
var errMeta = errors.New("malformed meta")

func (s *Store) metaKey(sum [32]byte) string {
	return s.key("blob:", hex.EncodeToString(sum[:]))
}

func (s *Store) chunkKey(sum [32]byte, n int) string {
	return s.key("blob:", hex.EncodeToString(sum[:]), ":", strconv.Itoa(n))
}

// PutBlob stores b under sum, after checking that sum is its SHA-256: its
// chunks first, then its meta, which makes it visible. A blob whose meta and
// chunks are all present is not written again. Either way its time in the
// blobs set becomes now, which protects it from GC for Config.Grace.
func (s *Store) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if len(b) > maxBlob {
		return fmt.Errorf("redisstore: put blob %x: %d bytes, more than %d", sum[:8], len(b), maxBlob)
	}
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("redisstore: put blob %x: %w", sum[:8], cache.ErrSum)
	}
	n := (len(b) + s.chunkSize - 1) / s.chunkSize
	keys := make([]string, 0, n+1)
	keys = append(keys, s.metaKey(sum))
	for i := range n {
		keys = append(keys, s.chunkKey(sum, i))
	}
	// The time in the blobs set first: GC does not remove a blob put
	// within its grace, so from here on this blob stays, present or
	// written below.
	if err := s.rdb.ZAdd(ctx, s.blobsKey(), redis.Z{Score: float64(s.now().UnixMilli()), Member: hex.EncodeToString(sum[:])}).Err(); err != nil {
		return fmt.Errorf("redisstore: put blob %x: %w", sum[:8], err)
	}
	have, err := s.rdb.Exists(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("redisstore: put blob %x: %w", sum[:8], err)
	}
	if have == int64(len(keys)) {
		return nil
	}
	perBatch := max(1, batchBytes/s.chunkSize)
	for first := 0; first < n; first += perBatch {
		pipe := s.rdb.Pipeline()
		for i := first; i < min(n, first+perBatch); i++ {
			pipe.Set(ctx, keys[1+i], b[i*s.chunkSize:min(len(b), (i+1)*s.chunkSize)], 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("redisstore: put blob %x: chunks: %w", sum[:8], err)
		}
	}
	meta := strconv.Itoa(len(b)) + " " + strconv.Itoa(n)
	if err := s.rdb.Set(ctx, keys[0], meta, 0).Err(); err != nil {
		return fmt.Errorf("redisstore: put blob %x: meta: %w", sum[:8], err)
	}
	return nil
}

// GetBlob returns the blob stored under sum, checked against sum: an error
// wrapping fs.ErrNotExist if its meta or a chunk is missing, one wrapping
// cache.ErrSum if its content does not match. A blob that does not match
// or whose meta is malformed loses its meta, so that it reads as missing
// and the next PutBlob writes it again.
func (s *Store) GetBlob(ctx context.Context, sum [32]byte) ([]byte, error) {
	meta, err := s.rdb.Get(ctx, s.metaKey(sum)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: get blob %x: %w", sum[:8], fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get blob %x: %w", sum[:8], err)
	}
	size, n, err := parseMeta(meta)
	var b []byte
	if err == nil {
		b, err = s.readChunks(ctx, sum, size, n)
	}
	if err == nil {
		return b, nil
	}
	if errors.Is(err, errMeta) || errors.Is(err, cache.ErrSum) {
		if derr := s.rdb.Del(ctx, s.metaKey(sum)).Err(); derr != nil {
			err = fmt.Errorf("%w (and removing its meta: %v)", err, derr)
		}
	}
	return nil, fmt.Errorf("redisstore: get blob %x: %w", sum[:8], err)
}

// ChecksSums tells cache.Cache that GetBlob checks every blob against its
// sum, so that the cache does not hash it again.
func (*Store) ChecksSums() {}

// readChunks reads the n chunks of sum, size bytes, and checks them.
func (s *Store) readChunks(ctx context.Context, sum [32]byte, size, n int) ([]byte, error) {
	// One goroutine fetches the next batch of chunks while this one
	// hashes and copies the last.
	batches := make(chan batch, 1)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	go func() {
		defer close(done)
		defer close(batches)
		s.fetchChunks(fctx, sum, n, batches)
	}()
	buf := make([]byte, 0, size)
	h := sha256.New()
	for bt := range batches {
		if bt.err != nil {
			return nil, bt.err
		}
		for j, v := range bt.chunks {
			if len(buf)+len(v) > size {
				return nil, fmt.Errorf("chunk %d: longer than the size %d: %w", bt.first+j, size, cache.ErrSum)
			}
			buf = append(buf, v...)
			h.Write(buf[len(buf)-len(v):])
		}
	}
	if len(buf) != size {
		return nil, fmt.Errorf("%d bytes, want %d: %w", len(buf), size, cache.ErrSum)
	}
	if [32]byte(h.Sum(nil)) != sum {
		return nil, cache.ErrSum
	}
	return buf, nil
}

// batch is chunks first, first+1... of a blob, or the error that ended
// the fetch.
type batch struct {
	first  int
	chunks []string
	err    error
}

// fetchChunks sends the n chunks of sum to out in batches, one pipelined
// round trip each, until the first error or until ctx ends.
func (s *Store) fetchChunks(ctx context.Context, sum [32]byte, n int, out chan<- batch) {
	// Batches are counted in chunks of this node's size; a writer with
	// another size changes only the round trips, not the result.
	perBatch := max(1, batchBytes/s.chunkSize)
	for first := 0; first < n; first += perBatch {
		bt := batch{first: first}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, 0, perBatch)
		for i := first; i < min(n, first+perBatch); i++ {
			cmds = append(cmds, pipe.Get(ctx, s.chunkKey(sum, i)))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			bt.err = fmt.Errorf("chunks %d to %d: %w", first, first+len(cmds)-1, err)
		}
		for j, c := range cmds {
			if bt.err != nil {
				break
			}
			v, err := c.Result()
			switch {
			case errors.Is(err, redis.Nil):
				bt.err = fmt.Errorf("chunk %d: %w", first+j, fs.ErrNotExist)
			case err != nil:
				bt.err = fmt.Errorf("chunk %d: %w", first+j, err)
			default:
				bt.chunks = append(bt.chunks, v)
			}
		}
		select {
		case out <- bt:
		case <-ctx.Done():
			return
		}
		if bt.err != nil {
			return
		}
	}
}

// parseMeta parses "<size> <chunks>".
func parseMeta(meta string) (size, chunks int, err error) {
	a, b, ok := strings.Cut(meta, " ")
	if ok {
		size, err = strconv.Atoi(a)
		if err == nil {
			chunks, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || size < 0 || size > maxBlob || chunks < 0 || (size > 0) != (chunks > 0) || chunks > size {
		return 0, 0, fmt.Errorf("%w %q, want \"<size> <chunks>\"", errMeta, meta)
	}
	return size, chunks, nil
}
