package irpki

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestArena: each returns exactly the bytes appended in any range, across
// chunk boundaries, and the chunks' slack is at most twice what was
// appended (or the first chunk) and one large chunk, so a small delta
// takes a small arena.
func TestArena(t *testing.T) {
	for _, total := range []int{0, 1, 30 << 10, arenaFirst, arenaFirst + 1, 3 * arenaChunk, 3*arenaChunk + 12345} {
		r := rand.New(rand.NewPCG(uint64(total), 1))
		var a arena
		var want []byte
		for len(want) < total {
			p := make([]byte, min(r.IntN(200<<10)+1, total-len(want)))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			a.append(p)
			want = append(want, p...)
		}
		if a.size != int64(len(want)) {
			t.Fatalf("%d bytes: size %d", total, a.size)
		}
		var held int
		for _, c := range a.chunks {
			held += cap(c)
		}
		if slack, most := held-total, min(2*max(total, arenaFirst), arenaChunk); slack > most {
			t.Errorf("%d bytes: the chunks hold %d more, want at most %d", total, slack, most)
		}
		for range 50 {
			if total == 0 {
				break
			}
			off := r.IntN(total)
			n := r.IntN(total - off + 1)
			var got []byte
			if err := a.each(int64(off), int64(n), func(p []byte) error {
				got = append(got, p...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("%d bytes: each(%d, %d) gave %d other bytes", total, off, n, len(got))
			}
		}
	}
}
