// Package follow implements an RRDP client (RFC 8182) that follows one
// repository: it polls the notification, applies deltas or takes the
// snapshot, verifies everything (hashes, delta chains, replaced-object
// hashes, the same-origin rules of RFC 9674), and publishes every
// verified state into a Store, blobs first and the head last, in both the
// XML and the iRPKI .bin formats, each with a gzip copy. The origin may be
// an RRDP XML repository or another rrdp-proxy's notification.bin.
//
// What is served for a state:
//
//   - Taken from a snapshot: a snapshot regenerated from its objects,
//     canonical and deterministic (sorted by URI), in both formats, and
//     the deltas the origin lists up to that serial, at most MaxDeltas, so
//     that RPs at older serials of the session get deltas. They are
//     fetched with the snapshot, checked against their hashes and then,
//     newest first, against the snapshot (each one must lead to the state
//     after it); the run is cut at the first that fails, which is counted
//     but does not fail the sync.
//   - Reached by deltas: the origin's delta bytes, and the snapshot
//     regenerated the same way. The snapshot of a serial therefore depends
//     only on the session and the objects, never on the path a node took
//     to it: the nodes of a fleet, with or without Redis, and independent
//     mirrors serve identical bytes (DESIGN.md, invariant 8).
//   - Transparent (reverse mode, Config.Transparent): the origin's own
//     notification, snapshot and delta bytes at the origin's paths (see
//     transparent.go).
//   - From a .bin origin: XML regenerated under a session derived from the
//     upstream's (irpki.DerivedSession).
//   - Transparent (Config.Transparent, reverse mode, an XML origin): see
//     below; nothing of the XML is regenerated.
//
// A desynchronisation (a known serial whose delta hash changed) or a serial
// that goes backwards upstream resets the session downstream: the fresh
// snapshot is served under a new session (Head.Resets, Head.Sessions), its
// files regenerated under it, so that RPs at the old serial start again and
// no session and serial ever names two byte strings (DESIGN.md, invariants
// 2 and 6). A head whose serial does not grow within its served session is
// refused (ErrOrder).
//
// With Config.Start a follower continues from a stored head: a restarted
// node or another node of a fleet fetches only the deltas since.
//
// # Transparent
//
// In transparent mode (reverse mode in front of an XML publication
// server) the proxy is a cache of the origin's own files, so that a
// relying party may switch between the origin and the proxy at any
// request and see the same bytes for every session and serial:
//
//   - The notification.xml published is the origin's body, byte for byte;
//     the snapshot and every delta it names are the origin's bytes, served
//     at the origin's own path (the URI's path under the directory of URL,
//     which is the path of Base). A URI outside that directory, with a
//     query, or not in clean form fails the sync (ErrOutside): the proxy
//     could not route it.
//   - A head is published only when every file the origin's notification
//     names is held (DESIGN.md, invariant 1): after a delta sync the
//     origin's snapshot of the new serial is fetched too (in parallel with
//     the deltas, hash-checked), and the listed deltas the node does not
//     hold are fetched, at most MaxDeltas; a file that cannot be fetched
//     or fails its hash fails the sync, and the last good state stays.
//     The fetched snapshot is checked against the state the deltas led to
//     (the same objects, the same hashes); on a mismatch, counted in
//     Stats.SnapshotMismatches and logged, the snapshot's state is taken:
//     the origin's snapshot is authoritative.
//   - A listed delta that is well formed and matches its hash but does not
//     lead to the snapshot (or older than the serial where the .bin
//     session began) is served as XML, since the origin serves it to
//     relying parties too, but left out of notification.bin.
//   - notification.bin and its files stay rrdp-proxy's own (irpki.FilePath
//     names, deterministic encoding). The .bin snapshot is made from the
//     objects as the regenerating path makes it (canonical order, per-group
//     fragments reused from the previous serial: binFiles), so it
//     depends only on the objects and the .bin session, not on the order or
//     formatting of the origin's XML nor on the path (snapshot or deltas)
//     the node took: every node serves the same .bin bytes, the same as a
//     mirror's for the same objects and session (invariant 8).
//   - The origin's snapshot is never held whole in memory: it is hashed as
//     it arrives into a spill, then read back from it twice at once, once
//     cut into segments stored as a composite file (only those that differ
//     from the previous serial's are new blobs; the gzip copy is joined
//     from per-segment deflate: origin.go), once decoded and compared,
//     object by object, with the state the deltas led to.
//   - Session resets and desynchronisation: the XML bytes are the
//     origin's, so the proxy cannot open a session of its own for XML.
//     After a desynchronisation or a serial going backwards it takes the
//     origin's snapshot and serves the origin's notification as it is:
//     what relying parties see is the origin's own session handling, the
//     same as at the origin. The .bin format, which is rrdp-proxy's, still
//     moves to a new session (Head.Resets), so that its bytes for a
//     session and serial never change (invariant 2); ErrOrder applies to
//     the .bin session only.
//   - A notification whose serial did not change is not published again,
//     even when its bytes changed (a publication server that rewrites its
//     notification without a new serial).
//
// Files that leave the origin's notification stay servable for Retention,
// as in the other modes. A .bin origin is never transparent.
package follow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Config configures a Follower. URL is required; every other zero field
// takes the default in its comment.
type Config struct {
	// URL is the notification to follow: notification.xml of an RRDP
	// repository, or notification.bin of another rrdp-proxy.
	URL string
	// Client fetches from the origin (upstream.New with a zero Config).
	Client *upstream.Client
	// Store receives the verified states (a new MemStore).
	Store Store
	// Repo is the key of the repository's head in the Store (URL).
	Repo string
	// Base is the URI of the directory under which the proxy serves the
	// files of this repository, ending in '/'; the notifications it
	// publishes name base + irpki.FilePath (the directory of URL).
	Base string
	// Interval is the time from the start of one poll to the start of
	// the next (1m); Jitter the fraction of it
	// by which each wait varies, both ways (0.1).
	Interval time.Duration
	Jitter   float64
	// MaxBackoff caps the wait after consecutive errors, which doubles
	// from Interval (30m).
	MaxBackoff time.Duration
	// Parallel caps the deltas fetched at once (4).
	Parallel int
	// MaxDeltas is the most deltas one sync applies; further behind, it
	// takes the snapshot (1000).
	MaxDeltas int
	// Retention is how long files that left the notification stay in
	// the head (2h, the publication server BCP).
	Retention time.Duration
	// Limits caps what the decoders accept (rrdpxml's defaults).
	Limits rrdpxml.Limits
	// AllowHTTP lets the follower write http:// URIs into the
	// notifications it publishes (an http Base) and accept them in the
	// origin's (another rrdp-proxy's, over a private link): it sets
	// Limits.AllowHTTP. Relying parties expect https (RFC 8182, section
	// 3.5.1), so by default a sync with an http Base fails.
	AllowHTTP bool
	// SpillDir and SpillThreshold: a fetched snapshot or delta is held
	// in memory up to SpillThreshold bytes (16 MiB) while it is read and
	// hashed, the rest in a temporary file in SpillDir (os.TempDir()),
	// and loaded only once its hash matched.
	SpillDir       string
	SpillThreshold int64
	// GzipLevel is the level of the gzip copies of snapshot and delta
	// files (klauspost/compress/gzip; 0 means gzip.BestSpeed, which
	// keeps a large snapshot's copy fast). The nodes of a fleet must use
	// the same level and library version for their hashes to agree.
	GzipLevel int
	// FragmentMin: a regenerated snapshot whose XML takes at least this
	// many bytes (8 MiB) is stored as fragments, composite files whose
	// parts successive serials share (frag.go), so that a serial costs its
	// changes and retained snapshots cost only what changed; a smaller
	// one is stored whole. Negative: never. The XML and .bin bytes are the
	// same either way; the gzip copies differ.
	FragmentMin int64
	// Transparent serves an XML origin as it is, for reverse mode: the
	// published notification.xml is the origin's body and the snapshot and
	// deltas are the origin's bytes at the origin's own paths (see the
	// package doc). The path of Base must then be the directory of URL.
	// Ignored for a .bin origin.
	Transparent bool
	// Seed seeds the jitter.
	Seed uint64
	// OnChange, if set, is called after each new state is published, in
	// the goroutine of Sync, outside the follower's locks: it may call
	// WalkObjects.
	OnChange func(*Head)
	// OnSync, if set, is called by Run after each sync with its duration
	// and error (nil on success), for metrics.
	OnSync func(time.Duration, error)
	// Start, if set, is the head to continue from: the last head of this
	// repository in the store, read back at start or taken from another
	// node of a fleet. The follower rebuilds its state from the blobs
	// Start names, read with Blobs, and then fetches only what changed
	// upstream; files of Start keep their retention. Nil starts empty.
	Start *Head
	// Blobs reads a blob the store holds (needed with Start); a
	// cache.Cache's Blob method fits.
	Blobs func(ctx context.Context, sum [32]byte) ([]byte, error)
	// Now is the clock (time.Now); Logger the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
}

// Follower follows one repository. Sync and Run may not run at the same
// time; the accessors are safe at any time.
type Follower struct {
	cfg    Config
	origin string
	dir    string // path of the directory of URL, ending in '/'
	log    *slog.Logger
	rnd    *rand.Rand

	syncMu sync.Mutex // one sync at a time
	mu     sync.Mutex // guards cur and stats
	cur    *state
	stats  Stats
	head   *Head
	seeded bool // Start was read back (or failed to)
	// hostWarned: warnHost ran (Sync's goroutine only).
	hostWarned bool
}

// state is the last verified state.
type state struct {
	session string // the upstream's
	serial  uint64
	format  irpki.Format
	objects map[string]object
	// order is the URIs of objects in canonical order (canonicalCompare),
	// nil until needed; frags the fragments of the composite snapshot of
	// this state, nil when it is not composite.
	order []string
	frags *fragments
	// cold are, until readBack, the fragments of a cold serial whose
	// objects are realiased to segments read back from the store (all the
	// serial's fragments, the passed ones first).
	cold []*fragments
	// xsegs are, in transparent mode, the segments of the origin's XML
	// snapshot of this state, nil when it is stored whole (origin.go).
	xsegs *originSegs
	// passed are the snapshot files of the serials a delta sync passed
	// on its way to this one, published as retained files.
	passed []File
	// resets counts the downstream session resets within the upstream
	// session (Head.Resets).
	resets uint64
	// deltaHashes are the hashes the upstream listed for its deltas, to
	// detect a desynchronisation.
	deltaHashes map[uint64][32]byte
	// held are the deltas we fetched and can serve, by serial.
	held         map[uint64]heldDelta
	etag, lastMo string
	// transparent: the XML served is the origin's (Head.Transparent);
	// notif is then the origin's notification body.
	transparent bool
	notif       []byte
}

type heldDelta struct {
	upstream [32]byte // hash in the upstream notification
	// files are XML, .bin and their gzip copies; in transparent mode a
	// delta outside the .bin session's chain has no .bin.
	files []File
}

// New returns a follower for cfg.
func New(cfg Config) (*Follower, error) {
	if cfg.URL == "" {
		return nil, errors.New("follow: no notification URL")
	}
	origin, err := upstream.Origin(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("follow: notification URL: %w", err)
	}
	if cfg.Client == nil {
		if cfg.Client, err = upstream.New(upstream.Config{}); err != nil {
			return nil, err
		}
	}
	if cfg.Store == nil {
		cfg.Store = NewMemStore()
	}
	if cfg.Repo == "" {
		cfg.Repo = cfg.URL
	}
	if cfg.Base == "" {
		cfg.Base = cfg.URL[:strings.LastIndexByte(cfg.URL, '/')+1]
	}
	if !strings.HasSuffix(cfg.Base, "/") {
		return nil, fmt.Errorf("follow: base %q does not end in /", cfg.Base)
	}
	if cfg.AllowHTTP {
		cfg.Limits.AllowHTTP = true
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 30 * time.Minute
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	if cfg.SpillThreshold <= 0 {
		cfg.SpillThreshold = 16 << 20
	}
	if cfg.MaxDeltas == 0 {
		cfg.MaxDeltas = 1000
	}
	if cfg.Retention == 0 {
		cfg.Retention = 2 * time.Hour
	}
	if cfg.Interval < 0 || cfg.Jitter < 0 || cfg.Jitter >= 1 || cfg.MaxBackoff < 0 || cfg.Parallel < 0 || cfg.MaxDeltas < 0 || cfg.Retention < 0 {
		return nil, errors.New("follow: negative interval, back-off, parallelism or retention, or jitter not below 1")
	}
	if cfg.GzipLevel == 0 {
		cfg.GzipLevel = gzip.BestSpeed
	}
	if cfg.FragmentMin == 0 {
		cfg.FragmentMin = 8 << 20
	}
	if cfg.GzipLevel < gzip.HuffmanOnly || cfg.GzipLevel > gzip.BestCompression {
		return nil, fmt.Errorf("follow: gzip level %d out of range", cfg.GzipLevel)
	}
	if cfg.Start != nil && cfg.Blobs == nil {
		return nil, errors.New("follow: Start without Blobs")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{
		cfg:    cfg,
		origin: origin,
		log:    log.With("origin", cfg.URL),
		rnd:    rand.New(rand.NewPCG(cfg.Seed, 0xf0110)),
		head:   cfg.Start,
	}
	if f.dir, err = f.checkTransparent(); err != nil {
		return nil, err
	}
	if h := cfg.Start; h != nil {
		f.stats.Session, f.stats.Serial = h.Session, h.Serial
	}
	return f, nil
}

// Stats returns the counters and the current session and serial.
func (f *Follower) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Head returns the last head published, or nil.
func (f *Follower) Head() *Head {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// WalkObjects calls fn for every object of the current state, in URI
// order. fn must not keep content.
func (f *Follower) WalkObjects(fn func(uri string, content []byte) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nil
	}
	uris := make([]string, 0, len(f.cur.objects))
	for u := range f.cur.objects {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	for _, u := range uris {
		if err := fn(u, f.cur.objects[u].content); err != nil {
			return err
		}
	}
	return nil
}

// Sync polls the notification once and, when the repository changed,
// verifies and publishes its new state. It reports whether a new state was
// published. On error the last good state stays published.
func (f *Follower) Sync(ctx context.Context) (bool, error) {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	changed, err := f.sync(ctx)
	f.mu.Lock()
	f.stats.Syncs++
	now := f.cfg.Now()
	if err != nil {
		f.stats.Errors++
		f.stats.LastError, f.stats.LastErr = now, err.Error()
		session, serial := f.stats.Session, f.stats.Serial
		f.mu.Unlock()
		f.log.Warn("sync failed, keeping the last good state", "err", err, "session", session, "serial", serial)
		return false, err
	}
	f.stats.LastSuccess = now
	f.stats.Holding = Holding{} // the origin's state is the one served
	if !changed {
		f.stats.NotModified++
	}
	h := f.head
	f.mu.Unlock()
	if changed && f.cfg.OnChange != nil {
		f.cfg.OnChange(h)
	}
	return changed, nil
}

func (f *Follower) count(fn func(*Stats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

func (f *Follower) sync(ctx context.Context) (bool, error) {
	if !f.seeded {
		f.seeded = true
		if f.cfg.Start != nil {
			f.seed(ctx, f.cfg.Start)
		}
	}
	f.mu.Lock()
	cur := f.cur
	f.mu.Unlock()
	req := upstream.Request{URL: f.cfg.URL, Kind: rrdpxml.KindNotification}
	if cur != nil {
		req.ETag, req.LastModified = cur.etag, cur.lastMo
	}
	resp, err := f.cfg.Client.Fetch(ctx, req)
	if err != nil {
		return false, f.fail(err)
	}
	if resp.Status == 304 {
		resp.Close()
		return false, nil
	}
	body, err := resp.ReadAll()
	if err != nil {
		return false, f.fail(err)
	}
	n, format, err := f.parseNotification(body)
	if err != nil {
		return false, f.fail(err)
	}
	transparent := f.transparent(format)
	if transparent {
		f.warnHost()
	}
	conditional := func(s *state) {
		s.etag, s.lastMo = resp.ETag, resp.LastModified
		if transparent {
			s.notif = body
		}
	}

	reset := false
	var snap *snapFetch // transparent: the snapshot, fetched beside the deltas
	if cur != nil && cur.session == n.SessionID && cur.format == format {
		desync := false
		for _, d := range n.Deltas {
			if h, ok := cur.deltaHashes[d.Serial]; ok && h != d.Hash && d.Serial <= cur.serial {
				desync = true
				f.log.Warn("desynchronisation: the hash of a known delta changed; taking the snapshot under a new session", "serial", d.Serial, "was", fmt.Sprintf("%x", h), "now", fmt.Sprintf("%x", d.Hash))
				break
			}
		}
		switch {
		case desync:
			f.count(func(s *Stats) { s.Desyncs++ })
			reset = true
		case n.Serial < cur.serial:
			f.count(func(s *Stats) { s.Backwards++ })
			f.log.Warn("serial went backwards; taking the snapshot under a new session", "serial", n.Serial, "ours", cur.serial)
			reset = true
		case n.Serial == cur.serial:
			f.mu.Lock()
			conditional(cur)
			f.mu.Unlock()
			return false, nil
		default:
			if transparent {
				// The origin's snapshot of the new serial is needed
				// whether the deltas work or not.
				snap = f.startSnapshot(ctx, n)
				defer snap.close()
			}
			ok, err := f.syncDeltas(ctx, cur, n, format, conditional, snap)
			if ok {
				return true, nil
			}
			if err != nil && ctx.Err() != nil {
				return false, err
			}
			var nf *noFallback
			if errors.As(err, &nf) {
				// The snapshot path needs the same file.
				return false, f.fail(nf.err)
			}
			if errors.Is(err, ErrHeld) {
				// The state is good; the snapshot would give it again.
				return false, f.fail(err)
			}
			f.classify(err)
			f.count(func(s *Stats) { s.DeltaFailures++ })
			f.log.Warn("deltas not usable; taking the snapshot", "err", err, "from", cur.serial, "to", n.Serial)
		}
	}
	if err := f.syncSnapshot(ctx, n, format, reset, conditional, snap); err != nil {
		return false, f.fail(err)
	}
	return true, nil
}

// parseNotification decodes either format and checks the same-origin
// rule for every file it names.
func (f *Follower) parseNotification(b []byte) (*rrdpxml.Notification, irpki.Format, error) {
	format, kind, err := irpki.Detect(b)
	if err != nil {
		return nil, 0, fmt.Errorf("notification %s: %w", f.cfg.URL, err)
	}
	if kind != rrdpxml.KindNotification {
		return nil, 0, fmt.Errorf("%s: a %s: %w", f.cfg.URL, kind, ErrNotNotification)
	}
	var n *rrdpxml.Notification
	if format == irpki.FormatXML {
		n, _, err = rrdpxml.DecodeNotification(bytes.NewReader(b), f.cfg.Limits)
	} else {
		n, err = irpki.UnmarshalNotification(b, f.cfg.Limits)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("notification %s: %w", f.cfg.URL, err)
	}
	uris := []string{n.Snapshot.URI}
	for _, d := range n.Deltas {
		uris = append(uris, d.URI)
	}
	seen := make(map[string]bool, len(uris))
	for _, u := range uris {
		if o, err := upstream.Origin(u); err != nil || o != f.origin {
			return nil, 0, fmt.Errorf("notification %s names %s: %w", f.cfg.URL, u, ErrCrossOrigin)
		}
		if !f.transparent(format) {
			continue
		}
		// Served at the origin's path: each must have one.
		p, err := f.rel(u)
		if err != nil {
			return nil, 0, fmt.Errorf("notification %s: %w", f.cfg.URL, err)
		}
		if seen[p] {
			return nil, 0, fmt.Errorf("notification %s names %s twice: %w", f.cfg.URL, u, ErrMismatch)
		}
		seen[p] = true
	}
	return n, format, nil
}

// fetchFile fetches a snapshot or delta and checks its hash.
func (f *Follower) fetchFile(ctx context.Context, kind rrdpxml.Kind, uri string, want [32]byte) ([]byte, error) {
	// Hashed as it streams, and past SpillThreshold kept on disk: a body
	// with a bad hash, or a decompression bomb cut at its cap, never
	// costs more than the threshold in memory; a good one is loaded once,
	// at its exact size.
	sp, err := f.fetchSpill(ctx, kind, uri, want)
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	return sp.Bytes()
}

// fetchSpill is fetchFile for a body the caller reads in place
// (Spill.Reader) and closes: a snapshot whose bytes are not served
// (regenerating mode) is decoded from the disk as it is read, never held
// whole in memory.
func (f *Follower) fetchSpill(ctx context.Context, kind rrdpxml.Kind, uri string, want [32]byte) (*upstream.Spill, error) {
	resp, err := f.cfg.Client.Fetch(ctx, upstream.Request{URL: uri, Kind: kind})
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		resp.Close()
		return nil, &upstream.Error{Op: "get", URL: uri, Err: fmt.Errorf("%w %d", upstream.ErrStatus, resp.Status)}
	}
	sp, err := resp.Spill(f.cfg.SpillDir, f.cfg.SpillThreshold)
	if err != nil {
		return nil, err
	}
	if got := sp.Sum(); got != want {
		sp.Close()
		return nil, fmt.Errorf("%s %s: sha-256 %x, the notification says %x: %w", kind, uri, got, want, ErrHash)
	}
	return sp, nil
}

// coldFrags returns the fragments readBack ends: st.cold, or st.frags when
// it alone is cold.
func (st *state) coldFrags() []*fragments {
	if st.cold == nil && st.frags != nil && st.frags.cold {
		return []*fragments{st.frags}
	}
	return st.cold
}
