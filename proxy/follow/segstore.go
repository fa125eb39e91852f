package follow

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/irpki/rrdp-proxy/cache"
)

// coldChunks is the fewest chunks a serial builds for its segments to go
// to the store alone (segStore.cold): below, what they add to the peak is
// small, and keeping them saves reading them back.
const coldChunks = 32

// segStore is where composite reads the segments it does not hold (get)
// and, when cold is set, puts those it builds, which it then keeps only
// until they are hashed (Cache.PutCold). The zero segStore reads nothing
// and keeps everything.
type segStore struct {
	ctx  context.Context
	get  cache.Getter
	cold func(ctx context.Context, sum [32]byte, b []byte) error
}

// bytes returns the bytes of p, read with get when p has none.
func (ss segStore) bytes(p piece) ([]byte, error) {
	if p.b != nil || p.n == 0 {
		return p.b, nil
	}
	if ss.get == nil {
		return nil, fmt.Errorf("segment %x: not held, and no store to read it from", p.sum[:8])
	}
	b, err := ss.get(ss.ctx, p.sum)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != p.n {
		return nil, fmt.Errorf("segment %x: %d bytes, %d expected", p.sum[:8], len(b), p.n)
	}
	return b, nil
}

// fileSum is the SHA-256, CRC-32 and size of a file.
type fileSum struct {
	sum  [32]byte
	crc  uint32
	size int64
}

// fileHasher hashes the bytes of one file on its own goroutine, in the
// order written; a buffer written with release goes back to bufs once
// hashed. The channel's room bounds what waits.
type fileHasher struct {
	in   chan hashJob
	done chan fileSum
}

type hashJob struct {
	b       []byte
	release bool
}

// newFileHasher starts a hasher; a hasher not on hashes nothing, and
// returns the zero fileSum.
func newFileHasher(on bool) *fileHasher {
	fh := &fileHasher{in: make(chan hashJob, 8), done: make(chan fileSum, 1)}
	go func() {
		h, crc := sha256.New(), crc32.NewIEEE()
		var size int64
		for j := range fh.in {
			if on {
				h.Write(j.b)
				crc.Write(j.b)
				size += int64(len(j.b))
			}
			if j.release {
				putBuf(j.b)
			}
		}
		var fs fileSum
		if on {
			h.Sum(fs.sum[:0])
			fs.crc, fs.size = crc.Sum32(), size
		}
		fh.done <- fs
	}()
	return fh
}

func (fh *fileHasher) write(b []byte, release bool) { fh.in <- hashJob{b, release} }

// close waits for what was written and returns the file's sums.
func (fh *fileHasher) close() fileSum {
	close(fh.in)
	return <-fh.done
}

// bufs are the buffers of cold segments, reused once stored and hashed.
var bufs sync.Pool

func getBuf(n int) []byte {
	if p, ok := bufs.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

func putBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:0]
	bufs.Put(&b)
}
