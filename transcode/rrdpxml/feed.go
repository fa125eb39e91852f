package rrdpxml

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// The read-ahead pipeline: one goroutine reads the input in large blocks
// and hashes them while the decoder scans the blocks before, so that
// SHA-256 runs on one core and the scanner on another.
const (
	blockSize = 256 << 10 // bytes per read-ahead block
	nBlocks   = 4         // blocks in flight at most
)

// errFileTooLarge marks input longer than Limits.MaxFileSize.
var errFileTooLarge = errors.New("input over the file size limit")

// feed owns the read-ahead goroutine. Blocks travel to the decoder on
// full and come back on free. The goroutine writes n, sum and err before
// it closes full, so the decoder may read them once it sees full closed.
type feed struct {
	r    io.Reader
	max  int64 // bytes allowed; one more is read to detect excess
	full chan []byte
	free chan []byte
	stop chan struct{}
	done chan struct{}

	stopped bool // stop is closed (decoder side)

	n    int64    // bytes read
	hash bool     // compute sum
	sum  [32]byte // SHA-256 of all bytes read, set at clean end of input
	err  error    // read error or errFileTooLarge; nil at clean end of input
}

func startFeed(r io.Reader, max int64, hash bool) *feed {
	f := &feed{
		r:    r,
		hash: hash,
		max:  max,
		full: make(chan []byte, nBlocks),
		free: make(chan []byte, nBlocks),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go f.run()
	return f
}

func (f *feed) run() {
	defer close(f.done)
	defer close(f.full)
	var h hash.Hash
	if f.hash {
		h = sha256.New()
	}
	allocated := 0
	for {
		var blk []byte
		select {
		case blk = <-f.free:
		default:
			if allocated < nBlocks {
				blk = make([]byte, blockSize)
				allocated++
			} else {
				select {
				case blk = <-f.free:
				case <-f.stop:
					return
				}
			}
		}
		blk = blk[:cap(blk)]
		if room := f.max + 1 - f.n; room < int64(len(blk)) {
			blk = blk[:room]
		}
		n, err := readFull(f.r, blk)
		if h != nil {
			h.Write(blk[:n])
		}
		f.n += int64(n)
		if n > 0 {
			select {
			case f.full <- blk[:n]:
			case <-f.stop:
				return
			}
		}
		switch {
		case f.n > f.max:
			f.err = errFileTooLarge
			return
		case err == io.EOF:
			if h != nil {
				h.Sum(f.sum[:0])
			}
			return
		case err != nil:
			f.err = err
			return
		}
	}
}

// readFull reads until b is full or the reader fails. Unlike io.ReadFull it
// reports a clean end of input as io.EOF even after a partial read, and
// passes any other error, io.ErrUnexpectedEOF included, through unchanged.
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// recycle hands a block back to the goroutine.
func (f *feed) recycle(blk []byte) {
	select {
	case f.free <- blk:
	default:
	}
}

// signal asks the goroutine to stop; it does not wait.
func (f *feed) signal() {
	if !f.stopped {
		f.stopped = true
		close(f.stop)
	}
}
