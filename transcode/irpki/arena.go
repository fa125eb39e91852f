package irpki

import "sort"

// arenaFirst is the size of an arena's first chunk, and arenaChunk the
// largest: each chunk is twice the one before, up to arenaChunk. Large
// chunks make the per-chunk overhead nil against a snapshot of hundreds of
// megabytes, and the slack at the end a rounding error; a small first one
// keeps a delta of a few objects (a serial a second, in the soak) from
// allocating 4 MiB to encode 30 KB.
const (
	arenaFirst = 64 << 10
	arenaChunk = 4 << 20
)

// arena is an append-only byte store in chunks. Unlike a growing slice it
// never copies what it holds and never needs twice the memory while it
// grows: the transcoder keeps the whole output in it, so peak memory is
// the size of the output plus one chunk (at most arenaChunk, and at most
// twice the output before it).
type arena struct {
	chunks [][]byte
	starts []int64 // the offset of each chunk's first byte
	size   int64
}

func (a *arena) append(p []byte) {
	for len(p) > 0 {
		if len(a.chunks) == 0 || len(a.chunks[len(a.chunks)-1]) == cap(a.chunks[len(a.chunks)-1]) {
			n := arenaFirst
			if len(a.chunks) > 0 {
				n = min(2*cap(a.chunks[len(a.chunks)-1]), arenaChunk)
			}
			a.chunks = append(a.chunks, make([]byte, 0, n))
			a.starts = append(a.starts, a.size)
		}
		last := &a.chunks[len(a.chunks)-1]
		n := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+n]
		a.size += int64(n)
		p = p[n:]
	}
}

// each calls fn with the bytes in [off, off+n), in order, chunk by chunk.
func (a *arena) each(off, n int64, fn func([]byte) error) error {
	i := sort.Search(len(a.starts), func(i int) bool { return a.starts[i] > off }) - 1
	for ; n > 0; i++ {
		c := a.chunks[i]
		start := off - a.starts[i]
		end := min(start+n, int64(len(c)))
		if err := fn(c[start:end]); err != nil {
			return err
		}
		n -= end - start
		off += end - start
	}
	return nil
}
