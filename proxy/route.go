package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
	"github.com/valyala/fasthttp"
)

// fileKind and fileFormat label what a request asked for, in metrics.
type fileKind uint8

const (
	kindOther fileKind = iota // operator routes, unknown paths
	kindNotification
	kindSnapshot
	kindDelta
	numKinds
)

var kindNames = [numKinds]string{"other", "notification", "snapshot", "delta"}

type fileFormat uint8

const (
	formatXML fileFormat = iota
	formatBin
	formatCompact // the compact iRPKI files, under compactDir
	numFormats
)

var formatNames = [numFormats]string{"xml", "bin", "compact"}

// compactDir holds a repository's compact publication, in its directory;
// compactNotification is its notification (compact.NotificationName).
const (
	compactDir          = "compact/"
	compactNotification = compactDir + "notification.bin"
)

func formatOf(f irpki.Format) fileFormat {
	if f == irpki.FormatBin {
		return formatBin
	}
	return formatXML
}

func kindOf(k rrdpxml.Kind) fileKind {
	switch k {
	case rrdpxml.KindSnapshot:
		return kindSnapshot
	case rrdpxml.KindDelta:
		return kindDelta
	case rrdpxml.KindNotification:
		return kindNotification
	}
	return kindOther
}

// variant is one representation of a file: the plain bytes or their gzip
// copy.
type variant struct {
	sum  [32]byte
	size int64
	etag []byte // strong: the quoted hex of the first 16 bytes of sum
	// body holds the bytes when the server keeps them itself
	// (notifications and their gzip copies); nil means the cache's blob
	// sum, or the parts of a composite file.
	body []byte
	// comp is set for a composite file (cache.File.Index).
	comp *composite
	// file is the head's file, for a retained composite one (Hold).
	file *follow.File
}

func newVariant(sum [32]byte, size int64, body []byte) variant {
	etag := make([]byte, 0, 34)
	etag = append(etag, '"')
	etag = hex.AppendEncode(etag, sum[:16])
	etag = append(etag, '"')
	return variant{sum: sum, size: size, etag: etag, body: body}
}

// entry is one file a repository serves.
type entry struct {
	kind    fileKind
	format  fileFormat
	mod     time.Time // Last-Modified, whole seconds
	lastMod []byte    // mod in the HTTP date format
	plain   variant
	gz      variant
	hasGz   bool
	// retained: the file left the notification (cache.File.Expires).
	// Without a state directory its blobs may be gone before its
	// retention ends (cache.memory bounds them): a 404 then, not a 500.
	retained bool
}

func (e *entry) setMod(t time.Time) {
	e.mod = t.UTC().Truncate(time.Second)
	e.lastMod = fasthttp.AppendHTTPDate(nil, e.mod)
}

// index maps the paths under a repository's Base to what one head serves.
type index struct {
	head  *follow.Head
	files map[string]*entry
}

// repo is the serving state of one configured repository.
type repo struct {
	cfg       Repo
	prefix    string   // path of Base, e.g. "/rrdp/"
	originDir string   // origin URL up to its directory, e.g. "https://o/rrdp/"
	aliasXML  string   // the origin's notification file name when it is not notification.xml or .bin
	hosts     []string // lowercase Host values routed here (reverse mode)
	idx       atomic.Pointer[index]
	ahead     atomic.Pointer[index] // of the last head Catchup gave
	cidx      atomic.Pointer[index] // of the compact head (Repo.Compact)
	cahead    atomic.Pointer[index] // of the last compact head Catchup gave
	// compactKey is the key of the compact head, "" when not served.
	compactKey string
	mu         sync.Mutex // serializes index builds
	pull       *puller
	pass       passCache // the host's other files (Repo.Passthrough)
	// originHost is the origin's scheme and host ("https://o"), where
	// the host's other files are fetched from.
	originHost string
	m          repoMetrics
	// live holds the fields SetRepos may change on a repository it
	// keeps (Stats, Interval); cfg stays as first configured.
	live atomic.Pointer[liveCfg]
}

type liveCfg struct {
	stats    func() follow.Stats
	interval time.Duration
}

// followStats returns the follower's counters, if Stats was configured.
func (r *repo) followStats() (follow.Stats, bool) {
	if l := r.live.Load(); l != nil && l.stats != nil {
		return l.stats(), true
	}
	return follow.Stats{}, false
}

// newRepo checks r and builds its routing; allowHTTP accepts an http://
// Base (Config.AllowHTTPBase).
func newRepo(r Repo, allowHTTP bool) (*repo, error) {
	if r.Name == "" || r.Origin == "" {
		return nil, fmt.Errorf("repository %q: name and origin are required: %w", r.Name, ErrConfig)
	}
	if r.Key == "" {
		r.Key = r.Origin
	}
	if r.Mode == "" {
		r.Mode = ModeReverse
	}
	if r.Mode != ModeReverse && r.Mode != ModeMirror {
		return nil, fmt.Errorf("repository %q: mode %q: %w", r.Name, r.Mode, ErrConfig)
	}
	if r.Base == "" {
		b, err := BaseURI(r.Mode, r.Origin, "")
		if err != nil {
			return nil, fmt.Errorf("repository %q: %w", r.Name, err)
		}
		r.Base = b
	}
	o, err := parseHTTPURL(r.Origin)
	if err != nil {
		return nil, fmt.Errorf("repository %q: origin: %w", r.Name, err)
	}
	b, err := url.Parse(r.Base)
	if err != nil || !(b.Scheme == "https" || b.Scheme == "http" && allowHTTP) || b.Host == "" || !strings.HasSuffix(b.Path, "/") {
		return nil, fmt.Errorf("repository %q: base %q must be an https URL ending in '/' (RFC 8182; http only with AllowHTTPBase): %w", r.Name, r.Base, ErrConfig)
	}
	dir := o.Path[:strings.LastIndexByte(o.Path, '/')+1]
	rp := &repo{cfg: r, prefix: b.Path, originDir: o.Scheme + "://" + o.Host + dir, originHost: o.Scheme + "://" + o.Host}
	if r.Compact {
		rp.compactKey = cache.CompactKey(r.Key)
	}
	if r.Passthrough && r.Mode != ModeReverse {
		return nil, fmt.Errorf("repository %q: pass-through serves a reverse repository's host: %w", r.Name, ErrConfig)
	}
	rp.live.Store(&liveCfg{stats: r.Stats, interval: r.Interval})
	if name := path.Base(o.Path); name != "notification.xml" && name != "notification.bin" && strings.HasSuffix(name, ".xml") {
		rp.aliasXML = name
	}
	if r.Mode == ModeReverse {
		hosts := r.Hosts
		if len(hosts) == 0 {
			hosts = []string{b.Host}
		}
		for _, h := range hosts {
			rp.hosts = append(rp.hosts, strings.ToLower(h))
		}
	}
	return rp, nil
}

// index returns the index of head h, building it when h is new.
func (r *repo) index(h *follow.Head) *index {
	return r.indexIn(&r.idx, h, func(old *index) *index { return buildIndex(h, old, r.aliasXML) })
}

// compactIndex returns the index of the compact head h.
func (r *repo) compactIndex(h *follow.Head) *index {
	return r.indexIn(&r.cidx, h, func(old *index) *index { return buildCompactIndex(h, old) })
}

// compactAheadIndex returns the index of h, a compact head newer than the
// one the cache serves (Config.Catchup).
func (r *repo) compactAheadIndex(h *follow.Head) *index {
	return r.indexIn(&r.cahead, h, func(old *index) *index { return buildCompactIndex(h, r.cidx.Load()) })
}

// indexIn returns the index in p if it is h's, or stores the one build
// makes from the old one.
func (r *repo) indexIn(p *atomic.Pointer[index], h *follow.Head, build func(old *index) *index) *index {
	if ix := p.Load(); ix != nil && ix.head == h {
		return ix
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := p.Load()
	if old != nil && old.head == h {
		return old
	}
	ix := build(old)
	p.Store(ix)
	return ix
}

// buildIndex indexes head h. Files already in old keep their
// Last-Modified; a changed notification gets one later than the previous
// one, even within the same second, so that If-Modified-Since never hides
// a change.
func buildIndex(h *follow.Head, old *index, alias string) *index {
	ix := indexNotifications(h, old, []notification{{"notification.xml", h.NotificationXML, formatXML}, {"notification.bin", h.NotificationBin, formatBin}})
	if alias != "" {
		ix.files[alias] = ix.files["notification.xml"]
	}
	indexFiles(ix, h, old, formatOf)
	return ix
}

// buildCompactIndex indexes a compact head (cache.CompactKey): its
// notification, snapshots and deltas, all under compactDir.
func buildCompactIndex(h *follow.Head, old *index) *index {
	ix := indexNotifications(h, old, []notification{{compactNotification, h.NotificationBin, formatCompact}})
	indexFiles(ix, h, old, func(irpki.Format) fileFormat { return formatCompact })
	return ix
}

// notification is a notification file a head serves, by its path.
type notification struct {
	name   string
	b      []byte
	format fileFormat
}

// indexNotifications starts the index of h with its notifications.
func indexNotifications(h *follow.Head, old *index, notifs []notification) *index {
	ix := &index{head: h, files: make(map[string]*entry, len(h.Files)+3)}
	notif := func(name string, b []byte, f fileFormat) {
		e := &entry{kind: kindNotification, format: f, plain: newVariant(sha256.Sum256(b), int64(len(b)), b)}
		mod := h.Time
		if old != nil {
			if o := old.files[name]; o != nil {
				if o.plain.sum == e.plain.sum {
					ix.files[name] = o
					return
				}
				if !mod.Truncate(time.Second).After(o.mod) {
					mod = o.mod.Add(time.Second)
				}
			}
		}
		e.setMod(mod)
		if gz := gzipBytes(b); gz != nil {
			e.gz, e.hasGz = newVariant(sha256.Sum256(gz), int64(len(gz)), gz), true
		}
		ix.files[name] = e
	}
	for _, n := range notifs {
		notif(n.name, n.b, n.format)
	}
	return ix
}

// indexFiles adds the snapshot and delta files of h to ix, in the format
// formatOf gives.
func indexFiles(ix *index, h *follow.Head, old *index, formatOf func(irpki.Format) fileFormat) {
	for _, f := range h.Files {
		e := ix.files[f.Path]
		if e == nil {
			e = &entry{kind: kindOf(f.Kind), format: formatOf(f.Format)}
			if o := old.lookup(f.Path); o != nil && o.kind != kindNotification {
				e.setMod(o.mod)
			} else {
				e.setMod(h.Time)
			}
			ix.files[f.Path] = e
		}
		e.retained = !f.Expires.IsZero()
		v := newVariant(f.Sum, f.Size, nil)
		if f.Composite() {
			v.comp = &composite{index: f.Index}
			if e.retained {
				v.file = &f
			}
		}
		if f.Gzip {
			e.gz, e.hasGz = v, true
		} else {
			e.plain = v
		}
	}
}

// aheadIndex returns the index of h, a head newer than the one the cache
// serves (Config.Catchup), building it once per head.
func (r *repo) aheadIndex(h *follow.Head) *index {
	if ix := r.ahead.Load(); ix != nil && ix.head == h {
		return ix
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ix := buildIndex(h, r.idx.Load(), "")
	r.ahead.Store(ix)
	return ix
}

func (ix *index) lookup(p string) *entry {
	if ix == nil {
		return nil
	}
	return ix.files[p]
}

// gzipBytes compresses a notification once per head; nil when gzip does
// not make it smaller.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil
	}
	if _, err := zw.Write(b); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil || buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}

// table routes requests to repositories. It is immutable; SetRepos swaps
// it.
type table struct {
	byHost map[string][]*repo // reverse mode, longest prefix first
	pass   map[string]*repo   // reverse hosts whose other files pass through
	mirror []*repo            // longest prefix first
	repos  []*repo            // by Name
}

func newTable(repos []*repo) *table {
	t := &table{byHost: map[string][]*repo{}, pass: map[string]*repo{}}
	for _, r := range repos {
		if r.cfg.Mode == ModeMirror {
			t.mirror = append(t.mirror, r)
			continue
		}
		for _, h := range r.hosts {
			t.byHost[h] = append(t.byHost[h], r)
			if p := t.pass[h]; r.cfg.Passthrough && (p == nil || r.cfg.Name < p.cfg.Name) {
				t.pass[h] = r // one per host: the first by name
			}
		}
	}
	longest := func(a, b *repo) int { return len(b.prefix) - len(a.prefix) }
	for _, rs := range t.byHost {
		slices.SortStableFunc(rs, longest)
	}
	slices.SortStableFunc(t.mirror, longest)
	t.repos = slices.Clone(repos)
	slices.SortFunc(t.repos, func(a, b *repo) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return t
}

// route finds the repository serving host and p, and the path relative to
// its Base. It does not allocate.
func (t *table) route(host, p []byte) (*repo, []byte) {
	if len(t.byHost) > 0 {
		var buf [256]byte
		if len(host) <= len(buf) {
			h := buf[:len(host)]
			for i, c := range host {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				h[i] = c
			}
			if r, rel := match(t.byHost[string(h)], p); r != nil {
				return r, rel
			}
			if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
				if r, rel := match(t.byHost[string(h[:i])], p); r != nil {
					return r, rel
				}
			}
		}
	}
	return match(t.mirror, p)
}

// passFor returns the reverse repository whose host's other files pass
// through for host, or nil.
func (t *table) passFor(host []byte) *repo {
	if len(t.pass) == 0 {
		return nil
	}
	h := strings.ToLower(string(host))
	if r := t.pass[h]; r != nil {
		return r
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return t.pass[h[:i]]
	}
	return nil
}

func match(rs []*repo, p []byte) (*repo, []byte) {
	for _, r := range rs {
		if len(p) >= len(r.prefix) && string(p[:len(r.prefix)]) == r.prefix {
			return r, p[len(r.prefix):]
		}
	}
	return nil, nil
}
