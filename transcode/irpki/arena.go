package irpki

// arenaChunk is the size of one arena chunk. Large enough that per-chunk
// overhead is nil, small enough that the slack at the end is a rounding
// error against a snapshot of hundreds of megabytes.
const arenaChunk = 4 << 20

// arena is an append-only byte store in fixed-size chunks. Unlike a growing
// slice it never copies what it holds and never needs twice the memory
// while it grows: the transcoder keeps the whole output in it, so peak
// memory is the size of the output plus one chunk.
type arena struct {
	chunks [][]byte
	size   int64
}

func (a *arena) append(p []byte) {
	for len(p) > 0 {
		if len(a.chunks) == 0 || len(a.chunks[len(a.chunks)-1]) == arenaChunk {
			a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		}
		last := &a.chunks[len(a.chunks)-1]
		n := copy((*last)[len(*last):arenaChunk], p)
		*last = (*last)[:len(*last)+n]
		a.size += int64(n)
		p = p[n:]
	}
}

// each calls fn with the bytes in [off, off+n), in order, chunk by chunk.
func (a *arena) each(off, n int64, fn func([]byte) error) error {
	for n > 0 {
		c := a.chunks[off/arenaChunk]
		start := off % arenaChunk
		end := start + n
		if end > int64(len(c)) {
			end = int64(len(c))
		}
		if err := fn(c[start:end]); err != nil {
			return err
		}
		n -= end - start
		off += end - start
	}
	return nil
}
