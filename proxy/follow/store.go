package follow

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

// Store receives the verified states of a repository. The follower puts
// every blob a head names before the head (DESIGN.md, invariant 1).
type Store interface {
	// PutBlob stores b under its SHA-256.
	PutBlob(ctx context.Context, sum [32]byte, b []byte) error
	// PutHead switches the repository to h, atomically.
	PutHead(ctx context.Context, repo string, h *Head) error
}

// Head and File are the stored schema, which belongs to package cache
// (DESIGN.md): a follower publishes cache.Heads.
type (
	Head = cache.Head
	File = cache.File
)

// MemStore is a Store in memory. Blobs are never removed.
type MemStore struct {
	mu    sync.RWMutex
	blobs map[[32]byte][]byte
	heads map[string]*Head
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{blobs: make(map[[32]byte][]byte), heads: make(map[string]*Head)}
}

// PutBlob stores b, after checking it against sum.
func (m *MemStore) PutBlob(_ context.Context, sum [32]byte, b []byte) error {
	if sha256.Sum256(b) != sum {
		return fmt.Errorf("memstore: blob %x: content does not match its key", sum[:8])
	}
	m.mu.Lock()
	m.blobs[sum] = b
	m.mu.Unlock()
	return nil
}

// PutHead switches repo to h. It refuses a head naming a blob it lacks
// (for a composite file, its part list or one of its parts).
func (m *MemStore) PutHead(ctx context.Context, repo string, h *Head) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	get := func(_ context.Context, sum [32]byte) ([]byte, error) {
		if b, ok := m.blobs[sum]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("memstore: blob %x: %w", sum[:8], fs.ErrNotExist)
	}
	// Every file, also a retained one: MemStore never removes a blob.
	sums, err := cache.Needed(ctx, h, time.Time{}, get)
	if err != nil {
		return fmt.Errorf("memstore: head of %s: %w", repo, err)
	}
	for _, sum := range sums {
		if _, ok := m.blobs[sum]; !ok {
			return fmt.Errorf("memstore: head of %s names blob %x, which is missing", repo, sum[:8])
		}
	}
	m.heads[repo] = h
	return nil
}

// Get returns the blob stored under sum, or an error wrapping
// fs.ErrNotExist: a cache.Getter.
func (m *MemStore) Get(_ context.Context, sum [32]byte) ([]byte, error) {
	if b, ok := m.Blob(sum); ok {
		return b, nil
	}
	return nil, fmt.Errorf("memstore: blob %x: %w", sum[:8], fs.ErrNotExist)
}

// Blob returns the blob stored under sum.
func (m *MemStore) Blob(sum [32]byte) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.blobs[sum]
	return b, ok
}

// Head returns the current head of repo, or nil.
func (m *MemStore) Head(repo string) *Head {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.heads[repo]
}

// coldStore is a Store that can keep the segments a serial builds out of
// memory until the head naming them is in place (cache.Cache with a state
// directory: see cache.Cache.PutCold). A serial that encodes most of a big
// snapshot again then holds one copy of the state, not two.
type coldStore interface {
	// Cold reports whether PutCold can take blobs.
	Cold() bool
	PutCold(ctx context.Context, sum [32]byte, b []byte) (bool, error)
	// Blob reads a blob, a cold one from its tier (then held in memory
	// if a head names it).
	Blob(ctx context.Context, sum [32]byte) ([]byte, error)
	// Warm reads the cold blobs of repo's head into memory.
	Warm(ctx context.Context, repo string) (int64, error)
}

// segStore returns where composite reads the segments it does not hold
// and, when the Store can keep them out of memory, puts those it builds.
func (f *Follower) segStore(ctx context.Context) segStore {
	ss := segStore{ctx: ctx, get: f.cfg.Blobs}
	cs, ok := f.cfg.Store.(coldStore)
	if !ok || !cs.Cold() {
		return ss
	}
	ss.get = cs.Blob
	ss.cold = func(ctx context.Context, sum [32]byte, b []byte) error {
		ok, err := cs.PutCold(ctx, sum, b)
		if err == nil && !ok {
			err = errors.New("the store declined a cold blob")
		}
		return err
	}
	return ss
}

// release drops the bytes of fr's segments once the store holds them
// (after the head naming them is in place, or resumed from it), when the
// follower can read them back (a getter): the store's copy is then the
// only one, and once a later head unpins it nothing else keeps an old
// state's segments alive (readBack's collection relies on it). The bytes
// are read from the store when a serial needs them.
func (f *Follower) release(fr *fragments) {
	if fr == nil || f.segStore(context.Background()).get == nil {
		return
	}
	for _, m := range []map[[32]byte]piece{fr.xml, fr.bin, fr.xgz, fr.bgz} {
		for k, p := range m {
			m[k] = p.bare()
		}
	}
}
