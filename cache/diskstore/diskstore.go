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
package diskstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	grace    time.Duration
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	// mu orders GC (write lock) against puts (read lock), so that GC never
	// removes a blob a put just found present.
	mu sync.RWMutex

	// size and count are the bytes and number of stored blobs: listed
	// once by Open, then counted as PutBlob writes and GC removes, and
	// set again from GC's listing, which corrects the rare double count
	// of two puts racing on one new blob. Bytes reads them, so that a
	// metrics scrape never lists the directory.
	size, count atomic.Int64
}

// Open opens the state directory of cfg, creating it if needed, and removes
// the temporary files a crash left behind.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("diskstore: no directory configured")
	}
	if cfg.Grace < 0 || cfg.GCInterval < 0 {
		return nil, fmt.Errorf("diskstore: negative grace %v or gc interval %v", cfg.Grace, cfg.GCInterval)
	}
	s := &Store{dir: cfg.Dir, grace: cfg.Grace, interval: cfg.GCInterval, now: cfg.Now, logger: cfg.Logger}
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
	sums, size, err := s.Blobs()
	if err != nil {
		return nil, err
	}
	s.size.Store(size)
	s.count.Store(int64(len(sums)))
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
// already present is not written again.
func (s *Store) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
	}
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("diskstore: put blob %x: content does not match its key", sum[:8])
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.blobPath(sum)
	if _, err := os.Stat(p); err == nil {
		// Present: refresh its time so that GC's grace counts from now.
		now := s.now()
		if err := os.Chtimes(p, now, now); err != nil {
			return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
		}
		return nil
	}
	if err := writeFile(p, b); err != nil {
		return fmt.Errorf("diskstore: put blob %x: %w", sum[:8], err)
	}
	s.size.Add(int64(len(b)))
	s.count.Add(1)
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

// PutHead switches repo to h. It refuses a head naming a blob that is not
// stored, except files whose retention ended before now.
func (s *Store) PutHead(ctx context.Context, repo string, h *cache.Head) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	if h == nil {
		return fmt.Errorf("diskstore: put head of %s: nil head", repo)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sums, err := cache.Needed(ctx, h, s.now(), s.GetBlob)
	if err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	for _, sum := range sums {
		if _, err := os.Stat(s.blobPath(sum)); err != nil {
			return fmt.Errorf("diskstore: put head of %s: blob %x: %w", repo, sum[:8], err)
		}
	}
	b, err := json.Marshal(record{Repo: repo, Head: h})
	if err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	if err := writeFile(s.headPath(repo), b); err != nil {
		return fmt.Errorf("diskstore: put head of %s: %w", repo, err)
	}
	return nil
}

// Heads returns the head of every repository, keyed by repository.
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
		p := filepath.Join(d, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("diskstore: read head %s: %w", p, err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("diskstore: read head %s: %w", p, err)
		}
		if r.Head == nil || filepath.Base(s.headPath(r.Repo)) != name {
			return nil, fmt.Errorf("diskstore: read head %s: names repository %q, which is stored under another name", p, r.Repo)
		}
		heads[r.Repo] = r.Head
	}
	return heads, nil
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
