package diskstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

// ledger is what the store counts its cap from, in memory: listed by Open
// (scan), then kept up to date by the puts and removals. Its mu guards the
// maps against concurrent puts (which hold Store.mu for reading); GC and
// the cap's passes hold Store.mu for writing and are alone.
type ledger struct {
	mu sync.Mutex
	// blobs is the size of every blob in the directory.
	blobs map[[32]byte]int64
	// pending holds the blobs put since a head last named them, with the
	// time of the put: a publish in progress (blobs first, head last),
	// never removed by the cap, until Grace passes.
	pending map[[32]byte]time.Time
	// heads are the stored heads, headSize the sizes of their files,
	// current the bytes of each head's current files.
	heads    map[string]*cache.Head
	headSize map[string]int64
	current  map[string]int64
	// checked holds, per repository, the keys of the live files of its
	// stored head whose blobs a PutHead found present: the next head
	// does not check them again.
	checked map[string]map[[32]byte]bool
	// lists are the blobs of the current composite files (the part list,
	// then its parts), by File.Index, read once. Those of retained files
	// are read from the directory each time (blobsOf, appendBlobsOf):
	// kept, they grew with the directory, to its cap (in the paper-1ca
	// soak, a serial a second, 6.5 MB of the heap when the directory held
	// 573 MB, read by GC and the cap's passes), and at RIPE NCC's size a
	// serial a minute
	// for two hours would keep some 500 part lists of 6,000 parts.
	lists map[[32]byte][][32]byte
	// broken are the head files Open could not read, by name: the store
	// does not know what they need, so neither GC nor the cap removes a
	// blob until a put replaces them.
	broken map[string]error
	// stuck: the last pass could not get under the cap (the current state
	// alone exceeds it); no pass runs again before the next head.
	stuck bool
	// leases counts, per blob, the responses that hold it (Hold, hold.go):
	// neither the cap nor GC removes a leased blob. held: the last pass
	// could not get under the cap because of leased blobs; no pass runs
	// again before a lease ends or the next head. Both are guarded by mu.
	leases map[[32]byte]int
	held   bool
	// releases counts the leases ended, so that a pass sets held
	// only if none ended while it ran (it reads the leases, then
	// decides, and a release between would be lost).
	releases uint64
}

func newLedger() ledger {
	return ledger{
		blobs: map[[32]byte]int64{}, pending: map[[32]byte]time.Time{},
		heads: map[string]*cache.Head{}, headSize: map[string]int64{}, current: map[string]int64{},
		checked: map[string]map[[32]byte]bool{}, lists: map[[32]byte][][32]byte{}, broken: map[string]error{},
		leases: map[[32]byte]int{},
	}
}

// scan counts the directory: the size of every blob, every head and the
// current state it names. Open calls it.
func (s *Store) scan() error {
	s.led = newLedger()
	s.gone.m = map[[32]byte]time.Time{}
	ents, err := os.ReadDir(filepath.Join(s.dir, blobDir))
	if err != nil {
		return fmt.Errorf("diskstore: list blobs: %w", err)
	}
	for _, e := range ents {
		sum, ok := parseBlobName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("diskstore: list blobs: %w", err)
		}
		s.led.blobs[sum] = info.Size()
		s.size.Add(info.Size())
	}
	s.count.Store(int64(len(s.led.blobs)))
	if ents, err = os.ReadDir(filepath.Join(s.dir, headDir)); err != nil {
		return fmt.Errorf("diskstore: list heads: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !isHeadName(name) || !e.Type().IsRegular() {
			continue
		}
		r, n, err := s.readHead(name)
		if err != nil {
			s.logger.Error("diskstore: a stored head cannot be read: no blob is removed until it is replaced", "err", err)
			s.led.broken[name] = err
			continue
		}
		s.led.setHead(s, r.Repo, r.Head, n, nil)
		var cur int64
		seen := map[[32]byte]bool{}
		for i := range r.Head.Files {
			f := &r.Head.Files[i]
			if !f.Expires.IsZero() {
				continue
			}
			sums, _ := s.blobsOf(f)
			for _, sum := range sums {
				if !seen[sum] {
					seen[sum] = true
					cur += s.led.blobs[sum]
				}
			}
		}
		s.led.current[r.Repo] = cur
		s.current.Add(cur)
	}
	return nil
}

// setHead records h, whose file has n bytes, as the stored head of repo,
// with checked the keys of the files found present. It forgets the part
// lists of the composite files that left or are retained now. l.mu is
// held (or the store is not shared yet).
func (l *ledger) setHead(s *Store, repo string, h *cache.Head, n int64, checked map[[32]byte]bool) {
	if old := l.heads[repo]; old != nil {
		keep := make(map[[32]byte]bool) // the current files: a few, the retained thousands
		for i := range h.Files {
			if h.Files[i].Expires.IsZero() {
				keep[h.Files[i].Index] = true
			}
		}
		for i := range old.Files {
			if f := &old.Files[i]; f.Composite() && !keep[f.Index] {
				delete(l.lists, f.Index)
			}
		}
	}
	l.heads[repo] = h
	s.headBytes.Add(n - l.headSize[repo])
	l.headSize[repo] = n
	var most int64
	for _, m := range l.headSize {
		most = max(most, m)
	}
	s.reserve.Store(most)
	l.checked[repo] = checked
	delete(l.broken, filepath.Base(s.headPath(repo)))
}

// has reports whether the ledger counts sum.
func (l *ledger) has(sum [32]byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.blobs[sum]
	return ok
}

// noteBlob counts the blob sum of n bytes, put at t (pending until a head
// names it).
func (s *Store) noteBlob(sum [32]byte, n int64, t time.Time) {
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	if _, ok := s.led.blobs[sum]; !ok {
		s.led.blobs[sum] = n
		s.size.Add(n)
		s.count.Add(1)
	}
	s.led.pending[sum] = t
}

// present returns an error wrapping fs.ErrNotExist unless every blob of
// sums is stored. A blob the ledger does not count is looked for in the
// directory (and counted if there).
func (s *Store) present(sums [][32]byte) error {
	for _, sum := range sums {
		if s.led.has(sum) {
			continue
		}
		info, err := os.Stat(s.blobPath(sum))
		if err != nil {
			return fmt.Errorf("blob %x: %w", sum[:8], err)
		}
		s.led.mu.Lock()
		if _, ok := s.led.blobs[sum]; !ok {
			s.led.blobs[sum] = info.Size()
			s.size.Add(info.Size())
			s.count.Add(1)
		}
		s.led.mu.Unlock()
	}
	return nil
}

// blobsOf returns the blobs of f: its own, or its part list and its parts,
// the list read from the directory, and remembered while f is current.
func (s *Store) blobsOf(f *cache.File) ([][32]byte, error) {
	if !f.Composite() {
		return [][32]byte{f.Sum}, nil
	}
	if l, ok := s.led.list(f.Index); ok {
		return l, nil
	}
	var buf []byte
	l, err := s.appendListed(nil, &buf, f)
	if err != nil {
		return nil, err
	}
	if f.Expires.IsZero() {
		s.led.mu.Lock()
		s.led.lists[f.Index] = l
		s.led.mu.Unlock()
	}
	return l, nil
}

// appendBlobsOf appends the blobs f needs to dst, as blobsOf returns
// them, reading an uncached part list into *buf (grown as needed, kept
// for the next call) rather than into new memory: the cap's pass reads
// the list of every retained composite file (about 900 in the paper-1ca
// soak at a 1 GiB cap), and reading each into its own buffer, then a
// []Part, then a list, made some 20 MB of garbage a pass, allocated in a
// burst that a collection under way counts as live.
func (s *Store) appendBlobsOf(dst [][32]byte, buf *[]byte, f *cache.File) ([][32]byte, error) {
	if !f.Composite() {
		return append(dst, f.Sum), nil
	}
	if l, ok := s.led.list(f.Index); ok {
		return append(dst, l...), nil
	}
	return s.appendListed(dst, buf, f)
}

// list returns the remembered blobs of the current composite file whose
// part list is index.
func (l *ledger) list(index [32]byte) ([][32]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.lists[index]
	return b, ok
}

// appendListed appends to dst the part list of the composite file f and
// the blobs it names, the list read from the directory into *buf.
func (s *Store) appendListed(dst [][32]byte, buf *[]byte, f *cache.File) ([][32]byte, error) {
	b, err := readInto(buf, s.blobPath(f.Index))
	if err != nil {
		return dst, fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	n := len(dst)
	dst = append(dst, f.Index)
	if dst, err = cache.AppendPartSums(dst, b); err != nil {
		return dst[:n], fmt.Errorf("part list of %s: %w", f.Path, err)
	}
	return dst, nil
}

// readInto reads the file at path into *buf, growing it when it is too
// small, and returns the bytes read. Like blobsOf's os.ReadFile it takes
// the list whole, whatever its size: a limit here alone would make the
// pass and GC refuse a list that the store accepts and serves (`large`'s
// lists are some 250 kB).
func readInto(buf *[]byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := st.Size()
	if int64(cap(*buf)) < n {
		*buf = slices.Grow((*buf)[:0], int(n))
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// gone holds the keys of the retained files the store dropped (to keep to
// its cap, or because their blobs were missing), until their retention
// ends: a head that names one again (the follower's next, which carries
// its retained files over) stores it without, and the cache answers 404
// for it (Dropped).
type gone struct {
	mu sync.RWMutex
	m  map[[32]byte]time.Time
}

func (g *gone) has(key [32]byte) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.m[key]
	return ok
}

func (g *gone) add(key [32]byte, until time.Time) {
	g.mu.Lock()
	g.m[key] = until
	g.mu.Unlock()
}

func (g *gone) del(key [32]byte) {
	if !g.has(key) {
		return
	}
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
}

// prune forgets the files whose retention ended before now.
func (g *gone) prune(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, t := range g.m {
		if !now.Before(t) {
			delete(g.m, k)
		}
	}
}

// removeBlob removes the blob sum of n bytes from the directory and the
// ledger. Store.mu is held for writing.
func (s *Store) removeBlob(sum [32]byte, n int64) error {
	if err := os.Remove(s.blobPath(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	if _, ok := s.led.blobs[sum]; ok {
		delete(s.led.blobs, sum)
		s.size.Add(-n)
		s.count.Add(-1)
	}
	delete(s.led.lists, sum)
	delete(s.led.pending, sum)
	return nil
}
