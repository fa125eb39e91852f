package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Spill is a body read to its end with bounded memory: up to the
// threshold in memory, past it in a temporary file, so that a body that
// turns out bad (a hash that does not match, a decompression bomb cut at
// its cap) never costs more than the threshold in memory, and a good one
// is loaded once, into a slice of its exact size. The file has no name
// once created (read through its descriptor), so nothing is left behind
// by a crash; Close releases it.
type Spill struct {
	mem      []byte
	f        *os.File
	unlinked bool // the file's name is gone already
	size     int64
	sum      [32]byte
}

// Spill reads the whole body, as ReadAll, and closes the response.
// Memory holds at most threshold bytes while it reads (1 MiB if
// threshold is zero or less); the rest goes to a temporary file in dir
// (os.TempDir() when empty), removed on error and by Spill.Close. A 304
// gives an empty Spill.
func (r *Response) Spill(dir string, threshold int64) (*Spill, error) {
	defer r.Close()
	s := &Spill{}
	if r.Body == nil {
		return s, nil
	}
	if threshold <= 0 {
		threshold = 1 << 20
	}
	buf := make([]byte, 0, min(threshold, 64<<10))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= threshold {
				break
			}
			nb := make([]byte, len(buf), min(threshold, 2*int64(cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			// The buffer grew by doubling, so up to half of it is slack
			// (nearly all of it for a body under 64 KiB). The body may
			// be kept as long as a notification names it (a delta's XML
			// is its blob), counted by its length, so it gets a slice of
			// its own size: a follower test kept a 64 KiB buffer for
			// every 15 KB delta it listed.
			if cap(buf)-len(buf) > 4<<10 {
				buf = bytes.Clone(buf)
			}
			s.mem, s.size, s.sum = buf, int64(len(buf)), r.Body.Sum()
			return s, nil
		}
		if err != nil {
			return nil, err
		}
	}
	f, err := os.CreateTemp(dir, "rrdp-proxy-body-*")
	if err != nil {
		return nil, &Error{Op: "read", URL: r.URL, Err: fmt.Errorf("spill the body to disk: %w", err)}
	}
	s.f = f
	// Unlinked at once, read through the open descriptor: a crash or a
	// kill leaves no body behind. Where the system refuses (not Linux),
	// Close removes it by name.
	s.unlinked = os.Remove(f.Name()) == nil
	if _, err := f.Write(buf); err != nil {
		s.Close()
		return nil, &Error{Op: "read", URL: r.URL, Err: fmt.Errorf("spill the body to disk: %w", err)}
	}
	buf = nil
	if _, err := io.Copy(f, r.Body); err != nil {
		s.Close()
		var ue *Error
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, &Error{Op: "read", URL: r.URL, Err: fmt.Errorf("spill the body to disk: %w", err)}
	}
	s.size, s.sum = r.Body.Size(), r.Body.Sum()
	return s, nil
}

// Sum is the SHA-256 of the body.
func (s *Spill) Sum() [32]byte { return s.sum }

// Size is the length of the body.
func (s *Spill) Size() int64 { return s.size }

// OnDisk reports whether the body went to a temporary file.
func (s *Spill) OnDisk() bool { return s.f != nil }

// Bytes returns the body in one slice of its size and removes the file.
func (s *Spill) Bytes() ([]byte, error) {
	if s.f == nil {
		return s.mem, nil
	}
	defer s.Close()
	b := make([]byte, s.size)
	if _, err := s.f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && int64(len(b)) == s.size) {
		return nil, fmt.Errorf("read the spilled body back: %w", err)
	}
	return b, nil
}

// Reader returns a reader of the body from its first byte: the bytes in
// memory or the temporary file, read in place (nothing loaded whole). It
// is valid until Close.
func (s *Spill) Reader() io.Reader {
	if s.f == nil {
		return bytes.NewReader(s.mem)
	}
	return io.NewSectionReader(s.f, 0, s.size)
}

// Close removes the temporary file, if any.
func (s *Spill) Close() error {
	if s.f == nil {
		return nil
	}
	name, unlinked := s.f.Name(), s.unlinked
	s.f.Close()
	s.f = nil
	if unlinked {
		return nil
	}
	return os.Remove(name)
}
