package follow

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Store receives the verified states of a repository. The follower puts
// every blob a head names before the head (DESIGN.md, invariant 1).
type Store interface {
	// PutBlob stores b under its SHA-256.
	PutBlob(ctx context.Context, sum [32]byte, b []byte) error
	// PutHead switches the repository to h, atomically.
	PutHead(ctx context.Context, repo string, h *Head) error
}

// Head is one published state of a repository: what the proxy serves for
// it until the next head.
type Head struct {
	// Repo is the URL of the upstream notification.
	Repo string
	// Session and Serial are the upstream's. The notifications are under
	// the sessions Sessions returns: Session for an XML origin and
	// irpki.DerivedSession(Session) for the XML of a .bin origin, until a
	// downstream reset.
	Session string
	Serial  uint64
	// Resets counts the downstream session resets within Session: after
	// a desynchronisation or a serial going backwards upstream, the proxy
	// serves the fresh snapshot under a new session, so that RPs at the
	// old serial start again. Zero until then.
	Resets uint64
	// Origin is the format of the upstream.
	Origin irpki.Format
	// Transparent marks a head of an XML origin in transparent mode
	// (Config.Transparent): NotificationXML is the origin's body and the
	// XML Files are the origin's bytes at the origin's paths.
	Transparent bool `json:",omitempty"`
	// Time is when the state was published.
	Time time.Time
	// NotificationXML and NotificationBin are the notifications the proxy
	// serves, naming the files at Base + File.Path.
	NotificationXML []byte
	NotificationBin []byte
	// Files are the snapshot and delta files the proxy serves: those the
	// notifications name, then those that left them, until they expire.
	Files []File
}

// File is one snapshot or delta file a head makes servable.
type File struct {
	// Path is relative to the base URI of the repository: irpki.FilePath,
	// or for the XML files of a transparent head the origin's path under
	// the directory of its notification.
	Path   string
	Sum    [32]byte // SHA-256 of the bytes, the key of the blob
	Size   int64
	Format irpki.Format
	Kind   rrdpxml.Kind
	Serial uint64
	// Expires is zero for a file the notifications name, otherwise the
	// end of its retention.
	Expires time.Time
	// Upstream is the SHA-256 of the upstream file this one was made
	// from (the hash in the origin's notification); zero for a snapshot
	// regenerated from deltas.
	Upstream [32]byte
	// Gzip marks the gzip-compressed copy of the file at Path: Sum and
	// Size are those of the compressed bytes. The plain file and its
	// gzip copy are two Files with the same Path; a server picks the copy
	// when the client accepts gzip. Code that walks a head's blobs (pins,
	// GC, Redis) needs no special case.
	Gzip bool
}

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

// PutHead switches repo to h. It refuses a head naming a blob it lacks.
func (m *MemStore) PutHead(_ context.Context, repo string, h *Head) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range h.Files {
		if _, ok := m.blobs[f.Sum]; !ok {
			return fmt.Errorf("memstore: head of %s names %s, whose blob %x is missing", repo, f.Path, f.Sum[:8])
		}
	}
	m.heads[repo] = h
	return nil
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
