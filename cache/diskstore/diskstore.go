// Package diskstore implements the disk tier of the rrdp-proxy cache: the
// RRDP (RFC 8182) and iRPKI files of every repository as content-addressed
// blobs, and one head per repository, kept in a state directory so that a
// restarted node serves at once, even while the origin is down.
//
// Every file is written atomically: a temporary file in the same directory,
// fsync, rename, fsync of the directory. A blob is durable before the call
// that put it returns, so a head written after its blobs (DESIGN.md,
// invariant 1) never names a missing blob, whenever the process dies.
// Temporary files left by a crash start with ".tmp-"; Open removes them and
// no reader ever takes them for data.
//
// The directory may be capped (Config.MaxBytes): above the cap the files
// in retention are dropped, oldest first, and the current state of every
// repository never is (cap.go). What the cap is counted from is kept in
// memory, from a scan at Open (ledger.go).
package diskstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

const (
	blobDir  = "blobs"
	headDir  = "heads"
	tmpStart = ".tmp-"
	headExt  = ".head"
)

// Config configures a Store. Dir is required; every other zero field takes
// the default in its comment.
type Config struct {
	// Dir is the state directory; Open creates it if needed.
	Dir string
	// MaxBytes caps the bytes of the directory's blobs and heads (none;
	// the daemon's cache.disk). The current state of every repository
	// (what its notifications name) is never evicted; above the cap the
	// files in retention are dropped, oldest first (cap.go).
	MaxBytes int64
	// Grace is how long GC keeps a blob that no head names after it was
	// last put, so that a publish in progress (blobs first, head last)
	// keeps its blobs (1h).
	Grace time.Duration
	// GCInterval is the time between collections in Run (10m).
	GCInterval time.Duration
	// Now is the clock (time.Now); GC compares it with the modification
	// times of files, so it must follow the file system's clock. Logger is
	// the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
}

// Store keeps blobs and heads in a directory. It is safe for concurrent
// use by one process; two processes must not share a directory.
type Store struct {
	dir      string
	max      int64
	grace    time.Duration
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	// mu orders GC and the cap's passes (write lock) against puts (read
	// lock), so that neither removes a blob a put just found present.
	mu sync.RWMutex

	// size and count are the bytes and number of stored blobs, headBytes
	// the bytes of the heads, current those of the current state: listed
	// once by Open, then counted as puts write and GC and the cap remove
	// (led holds what they are counted from). Bytes and Cap read them, so
	// that a metrics scrape never lists the directory.
	size, count, headBytes, current atomic.Int64
	// reserve is the size of the largest head file: the cap keeps room
	// for one more while a head is written (its temporary file beside the
	// old one).
	reserve atomic.Int64

	led  ledger
	gone gone

	evictions, evictedBytes, overCount atomic.Uint64
	passes                             atomic.Int64 // the cap's passes run (tests)
	over                               atomic.Bool

	// sinceHead counts the blobs written since the last head; unsynced:
	// some were written without a sync (write) since the last
	// syncBlobs.
	sinceHead atomic.Int64
	unsynced  atomic.Bool
}

// syncOneByOne is how many blobs after a head are synced as they are
// written (two fsyncs each: the file, its directory), as for every blob
// before; the rest wait for one syncfs before the next head. syncfs
// flushes whatever else is dirty on the file system too (a reverse-mode
// spill of the origin's snapshot lives there), so small serials keep the
// per-blob syncs and only big ones (a serial of 10,000 changed objects on
// large writes about 10,000 blobs, and spent 5.7 to 7.2 s in those
// fsyncs) wait. Measured in docs/bench/state.md, "Blobs made durable
// together".
const syncOneByOne = 4096

// syncBlobs makes the blobs written so far durable, before a head that
// names them is written (write).
func (s *Store) syncBlobs() error {
	s.sinceHead.Store(0)
	if !s.unsynced.Swap(false) {
		return nil
	}
	if err := syncfs(s.dir); err != nil {
		s.unsynced.Store(true)
		return fmt.Errorf("diskstore: make the blobs durable before the head: %w", err)
	}
	return nil
}

// Open opens the state directory of cfg, creating it if needed, removes
// the temporary files a crash left behind, and counts what the directory
// holds (every blob's size, every head), so that the cap holds from the
// start: over it, Open evicts at once.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("diskstore: no directory configured")
	}
	if cfg.Grace < 0 || cfg.GCInterval < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("diskstore: negative grace %v, gc interval %v or max bytes %d", cfg.Grace, cfg.GCInterval, cfg.MaxBytes)
	}
	start := time.Now()
	s := &Store{dir: cfg.Dir, max: cfg.MaxBytes, grace: cfg.Grace, interval: cfg.GCInterval, now: cfg.Now, logger: cfg.Logger}
	if s.grace == 0 {
		s.grace = time.Hour
	}
	if s.interval == 0 {
		s.interval = 10 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{s.dir, filepath.Join(s.dir, blobDir), filepath.Join(s.dir, headDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("diskstore: create %s: %w", d, err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	for _, d := range []string{blobDir, headDir} {
		n, err := removeTemps(filepath.Join(s.dir, d))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			s.logger.Info("diskstore: removed temporary files left by a crash", "dir", d, "count", n)
		}
	}
	if err := s.scan(); err != nil {
		return nil, err
	}
	s.logger.Info("diskstore: opened", "dir", s.dir, "blobs", s.count.Load(), "bytes", s.Used(),
		"current_bytes", s.current.Load(), "max_bytes", s.max, "heads", len(s.led.heads), "took", time.Since(start).Round(time.Millisecond))
	if s.full(0) {
		s.makeRoom(0)
	}
	return s, nil
}

// Dir returns the state directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobPath(sum [32]byte) string {
	return filepath.Join(s.dir, blobDir, hex.EncodeToString(sum[:]))
}

func (s *Store) headPath(repo string) string {
	k := sha256.Sum256([]byte(repo))
	return filepath.Join(s.dir, headDir, hex.EncodeToString(k[:])+headExt)
}

// PutBlob stores b under sum, after checking that sum is its SHA-256. A blob
// already present is not written again. Over the cap, room is made first
// (cap.go).
func (s *Store) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
	}
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("diskstore: put blob %x: content does not match its key", sum[:8])
	}
	if s.full(int64(len(b))) && !s.led.has(sum) {
		s.makeRoom(int64(len(b)))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.blobPath(sum)
	now := s.now()
	if info, err := os.Stat(p); err == nil {
		// Present: refresh its time so that GC's grace counts from now.
		if err := os.Chtimes(p, now, now); err != nil {
			return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
		}
		s.noteBlob(sum, info.Size(), now)
		return nil
	}
	// The first syncOneByOne blobs since a head are synced as written;
	// past them (a serial that changes most of a big repository) they
	// are written without a sync and made durable together, by syncfs,
	// before the head that names them (write).
	lazy := canSyncfs && s.sinceHead.Add(1) > syncOneByOne
	if err := write(p, b, !lazy); err != nil {
		return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
	}
	if lazy {
		s.unsynced.Store(true)
	}
	s.noteBlob(sum, int64(len(b)), now)
	return nil
}

// GetBlob returns the blob stored under sum, or an error wrapping
// fs.ErrNotExist. It does not check the content: the cache does, on every
// read from a lower tier.
func (s *Store) GetBlob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("diskstore: get blob %x: %w", sum[:8], err)
	}
	b, err := os.ReadFile(s.blobPath(sum))
	if err != nil {
		return nil, fmt.Errorf("diskstore: get blob %x: %w", sum[:8], err)
	}
	return b, nil
}

// record is the on-disk form of a head.
type record struct {
	Repo string      `json:"repo"`
	Head *cache.Head `json:"head"`
}

// writeHead writes the record of repo's head h to path atomically and
// durably, streamed (cache.Head.WriteJSON): the bytes of json.Marshal of
// the record, never held whole. It returns their number.
func writeHead(path, repo string, h *cache.Head) (int64, error) {
	var n int64
	err := writeWith(path, true, func(w io.Writer) error {
		q, err := json.Marshal(repo)
		if err != nil {
			return err
		}
		var hn int64
		k, err := fmt.Fprintf(w, `{"repo":%s,"head":`, q)
		if err == nil {
			hn, err = h.WriteJSON(w)
		}
		if err == nil {
			_, err = io.WriteString(w, "}")
		}
		n = int64(k) + hn + 1
		return err
	})
	return n, err
}

// PutHead switches repo to h. It refuses a head naming a blob that is not
// stored for a file the notifications name. A file in retention that the
// store dropped to keep to its cap, or whose blobs are missing, is left
// out of the stored head (and so of a restarted node's), not refused.
// Files whose retention ended are not checked.
func (s *Store) PutHead(ctx context.Context, repo string, h *cache.Head) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	if h == nil {
		return fmt.Errorf("diskstore: put head of %s: nil head", repo)
	}
	if s.full(0) {
		s.makeRoom(0)
	}
	if err := s.putHead(repo, h); err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	if s.full(0) {
		s.makeRoom(0)
	}
	return nil
}

func (s *Store) putHead(repo string, h *cache.Head) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	s.led.mu.Lock()
	checked := s.led.checked[repo]
	s.led.mu.Unlock()
	keys := make(map[[32]byte]bool, len(h.Files))
	var named, cur [][32]byte
	var drop []int
	for i := range h.Files {
		f := &h.Files[i]
		if !f.Live(now) {
			continue
		}
		key, retained := f.Key(), !f.Expires.IsZero()
		if retained && s.gone.has(key) {
			drop = append(drop, i)
			continue
		}
		if !retained {
			s.gone.del(key) // named again as current
		}
		if retained && checked[key] {
			keys[key] = true
			continue
		}
		sums, err := s.blobsOf(f)
		if err == nil && !checked[key] {
			err = s.present(sums)
		}
		switch {
		case err != nil && retained:
			s.logger.Warn("diskstore: a retained file's blobs are missing; left out of the stored head", "repo", repo, "path", f.Path, "err", err)
			s.gone.add(key, f.Expires)
			drop = append(drop, i)
			continue
		case err != nil:
			return err
		}
		keys[key] = true
		named = append(named, sums...)
		if !retained {
			cur = append(cur, sums...)
		}
	}
	stored := h
	if len(drop) > 0 {
		stored = without(h, drop)
	}
	if err := s.syncBlobs(); err != nil {
		return err
	}
	size, err := writeHead(s.headPath(repo), repo, stored)
	if err != nil {
		return err
	}
	s.led.mu.Lock()
	defer s.led.mu.Unlock()
	s.led.setHead(s, repo, stored, size, keys)
	for _, sum := range named {
		delete(s.led.pending, sum)
	}
	var n int64
	seen := make(map[[32]byte]bool, len(cur))
	for _, sum := range cur {
		if !seen[sum] {
			seen[sum] = true
			n += s.led.blobs[sum]
		}
	}
	s.current.Add(n - s.led.current[repo])
	s.led.current[repo] = n
	s.led.stuck = false
	s.led.held = false
	return nil
}

// without returns a copy of h without its files at the indexes drop, in
// increasing order.
func without(h *cache.Head, drop []int) *cache.Head {
	c := *h
	c.Files = make([]cache.File, 0, len(h.Files)-len(drop))
	for i, f := range h.Files {
		if len(drop) > 0 && drop[0] == i {
			drop = drop[1:]
			continue
		}
		c.Files = append(c.Files, f)
	}
	return &c
}

// Heads returns the head of every repository, keyed by repository, read
// from the directory.
func (s *Store) Heads(ctx context.Context) (map[string]*cache.Head, error) {
	d := filepath.Join(s.dir, headDir)
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("diskstore: list heads: %w", err)
	}
	heads := make(map[string]*cache.Head, len(ents))
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("diskstore: list heads: %w", err)
		}
		name := e.Name()
		if !isHeadName(name) || !e.Type().IsRegular() {
			continue
		}
		r, _, err := s.readHead(name)
		if err != nil {
			return nil, err
		}
		heads[r.Repo] = r.Head
	}
	return heads, nil
}

// readHead reads the head file called name, and returns its size.
func (s *Store) readHead(name string) (record, int64, error) {
	p := filepath.Join(s.dir, headDir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		return record{}, 0, fmt.Errorf("diskstore: read head %s: %w", p, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, 0, fmt.Errorf("diskstore: read head %s: %w", p, err)
	}
	if r.Head == nil || filepath.Base(s.headPath(r.Repo)) != name {
		return record{}, 0, fmt.Errorf("diskstore: read head %s: names repository %q, which is stored under another name", p, r.Repo)
	}
	return r, int64(len(b)), nil
}

// Blobs returns the sums of the stored blobs and their total size.
func (s *Store) Blobs() ([][32]byte, int64, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, blobDir))
	if err != nil {
		return nil, 0, fmt.Errorf("diskstore: list blobs: %w", err)
	}
	var sums [][32]byte
	var size int64
	for _, e := range ents {
		sum, ok := parseBlobName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // collected meanwhile
			}
			return nil, 0, fmt.Errorf("diskstore: list blobs: %w", err)
		}
		sums = append(sums, sum)
		size += info.Size()
	}
	return sums, size, nil
}

// Bytes returns the total size of the stored blobs, as counted since Open
// (it reads no directory).
func (s *Store) Bytes() int64 { return s.size.Load() }

// Used returns the bytes the cap is compared with: the blobs and the
// heads, as counted since Open.
func (s *Store) Used() int64 { return s.size.Load() + s.headBytes.Load() }

// Count returns the number of stored blobs, as counted since Open.
func (s *Store) Count() int64 { return s.count.Load() }

func parseBlobName(name string) ([32]byte, bool) {
	var sum [32]byte
	if len(name) != 64 {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(name)); err != nil {
		return sum, false
	}
	return sum, strings.ToLower(name) == name
}

func isHeadName(name string) bool {
	base, ok := strings.CutSuffix(name, headExt)
	if !ok {
		return false
	}
	_, ok = parseBlobName(base)
	return ok
}

// Durable tells the cache that the store keeps every blob it was given
// until GC drops it: files that left a notification need not stay pinned
// in memory (cache.Config.Tiers).
func (s *Store) Durable() {}
