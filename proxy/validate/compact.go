package validate

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Compact configures the compact publications (Config.Compact): the
// paper's iROAs and iMFTs made from what validated, signed by the proxy's
// key (transcode/rpki/compact), one publication per repository that
// SetCompact names, served under "compact/" in the repository's directory.
//
// A compact publication is a head of its own in Store, under
// cache.CompactKey of the repository's key: its serials follow validation,
// not the repository. Every run that changes what validated in a
// repository's publication points (a serial of it, a serial of another
// repository its CAs hang from, an object expiring) publishes the next
// compact serial, with a delta of the CA groups that changed. In gate mode
// a held serial changes nothing: the compact publication shows the state
// served.
type Compact struct {
	// Signer signs the iMFTs and the notifications. Required.
	Signer *compact.Signer
	// Store receives the compact heads and their blobs (the node's cache).
	// Required.
	Store follow.Store
	// Head returns the stored head of a key (the cache's Head), from which
	// a publication continues after a restart; nil starts new sessions.
	Head func(key string) *follow.Head
	// Retention keeps the files that left a compact notification servable
	// (2h, the RRDP BCP's as for the other formats).
	Retention time.Duration
	// MaxDeltas caps the deltas a notification lists (compact.Options).
	MaxDeltas int
	// OmitCertificates makes lean publications
	// (compact.Builder.OmitCertificates).
	OmitCertificates bool
	// GzipLevel compresses the gzip copies of the snapshots and deltas
	// (gzip.BestCompression); a copy that saves less than an eighth is not
	// kept.
	GzipLevel int
	// Publish, if set, says whether this node publishes the compact form
	// of the repository with key key now; nil: always. In a fleet it is
	// fleet.Node.Publishes: the holder of the repository's lease alone
	// signs its serials, and the others serve the heads it publishes,
	// which the fleet installs. A node that starts publishing continues
	// from the stored head (Head), the last one the fleet installed.
	Publish func(key string) bool
}

// CompactRepo names a repository whose compact form is published.
type CompactRepo struct {
	// Key is the repository's head key, Name its name in logs.
	Key, Name string
}

// compactPub is the compact publication of one repository. v.runMu
// guards it.
type compactPub struct {
	key, name string
	pub       *compact.Publication // nil before the first
	head      *follow.Head         // the last stored
	// groups are the last groups built, by point URI, with the
	// fingerprint of what made each, so that a run rebuilds only the
	// points that changed.
	groups map[string]builtGroup
	b      compact.Builder
	// loaded says the stored head was tried.
	loaded bool
	err    string
	// seen is the repository's serial the last run saw.
	seen uint64
	// installed says another node publishes it (Compact.Publish).
	installed bool
}

type builtGroup struct {
	fp [sha256.Size]byte
	g  *irpkipb.CompactCA
}

// SetCompact sets the repositories whose compact form is published (none
// without Config.Compact); the next run publishes those that have a
// state. A repository left out keeps its stored compact head, which is no
// longer updated.
func (v *Validator) SetCompact(repos []CompactRepo) {
	v.runMu.Lock()
	defer v.runMu.Unlock()
	keep := map[string]*compactPub{}
	for _, r := range repos {
		p := v.cpubs[r.Key]
		if p == nil {
			p = &compactPub{key: r.Key, name: r.Name}
			if c := v.cfg.Compact; c != nil {
				p.b.OmitCertificates = c.OmitCertificates
			}
		}
		p.name = r.Name
		keep[r.Key] = p
	}
	v.cpubs = keep
	v.compactNew = true
	v.poke()
}

// RepublishCompact makes the next run publish the compact forms from the
// last validation, without validating again when nothing changed: a node
// that has just started publishing (fleet.Config.Took) makes the serial
// the last publisher may not have made before it stopped, and none when
// the state is the one the stored head was made from.
func (v *Validator) RepublishCompact() {
	v.mu.Lock()
	v.compactAgain = true
	v.mu.Unlock()
	v.poke()
}

// publishCompact publishes the compact form of every repository that
// SetCompact names from res, the validation of the states v.repos holds.
// A failure is logged and counted; the last compact state stays served.
// v.runMu is held.
func (v *Validator) publishCompact(ctx context.Context, res *rpki.Result) {
	c := v.cfg.Compact
	if c == nil || len(v.cpubs) == 0 || res == nil {
		return
	}
	v.compactNew = false
	if res.Stats.TALs == res.Stats.InvalidTALs {
		// No trust anchor could be used (a TA certificate that could not
		// be fetched, say): everything would leave the compact form, for a
		// reason of this node's. The last compact state stays.
		for _, p := range v.cpubs {
			p.err = "not published: " + errNoTAL.Error()
		}
		v.setCompactStatus()
		return
	}
	v.src.u = unionOf(v.repos, nil)
	keys := make([]string, 0, len(v.cpubs))
	for k := range v.cpubs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := v.cpubs[k]
		rs := v.repos[k]
		if rs == nil {
			continue // no state yet
		}
		if c.Publish != nil && !c.Publish(k) {
			// Another node signs it: continue from the stored head,
			// whichever that is, when this one starts publishing.
			*p = compactPub{key: p.key, name: p.name, b: p.b, installed: true, seen: rs.serial}
			continue
		}
		p.installed = false
		if c.Head != nil && p.loaded {
			if h := c.Head(cache.CompactKey(k)); h != nil && (p.head == nil || !cache.SameCompact(h, p.head)) {
				// Another node published since this one last did (a
				// fleet's lease lost and taken back, maybe before this
				// node's first serial was stored): continue from the
				// stored head, never from an older serial or a new
				// session.
				*p = compactPub{key: p.key, name: p.name, b: p.b}
			}
		}
		err := v.publishOne(ctx, p, rs, res)
		p.err, p.seen = "", rs.serial
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.err = err.Error()
			v.mu.Lock()
			v.n.compactFailures++
			v.mu.Unlock()
			v.log.Error("compact: cannot publish", "repo", p.name, "err", err)
		}
	}
	v.setCompactStatus()
}

// setCompactStatus records the state of the publications for Status.
// v.runMu is held.
func (v *Validator) setCompactStatus() {
	st := make([]status.CompactPublication, 0, len(v.cpubs))
	keys := map[string]string{} // by name
	for _, p := range v.cpubs {
		keys[p.name] = p.key
		cp := status.CompactPublication{Repo: p.name, Err: p.err, RepoSerial: p.seen, Installed: p.installed}
		if p.pub != nil {
			cp.Session, cp.Serial, cp.CAs = p.pub.Session, p.pub.Serial, len(p.pub.Groups)
		}
		if p.head != nil {
			cp.Time = p.head.Time
		}
		st = append(st, cp)
	}
	slices.SortFunc(st, func(a, b status.CompactPublication) int { return strings.Compare(a.Repo, b.Repo) })
	ks := make([]string, len(st))
	for i := range st {
		ks[i] = keys[st[i].Repo]
	}
	v.mu.Lock()
	v.compactSt, v.compactKeys = st, ks
	v.mu.Unlock()
}

// installedStatus fills, in st (v.compactSt's copy), the serials of the
// publications another node makes from the heads installed now: they
// change between runs. v.mu is held.
func (v *Validator) installedStatus(st []status.CompactPublication) {
	c := v.cfg.Compact
	if c == nil || c.Head == nil {
		return
	}
	for i := range st {
		if !st[i].Installed || i >= len(v.compactKeys) {
			continue
		}
		if h := c.Head(cache.CompactKey(v.compactKeys[i])); h != nil {
			st[i].Session, st[i].Serial, st[i].Time = h.Session, h.Serial, h.Time
		}
	}
}

// publishOne publishes the next compact serial of p when what validated
// in rs's publication points changed.
func (v *Validator) publishOne(ctx context.Context, p *compactPub, rs *repoState, res *rpki.Result) error {
	c := v.cfg.Compact
	if !p.loaded {
		if err := v.loadCompact(ctx, p); err != nil {
			if ctx.Err() != nil {
				return err // tried again by the next run
			}
			// A new session; the stored one's files stay retained
			// (compactHead carries p.head's files over).
			v.log.Warn("compact: the stored publication cannot be continued; a new session starts", "repo", p.name, "err", err)
			p.pub = nil
		}
		p.loaded = true
	}
	groups, err := v.compactGroups(ctx, p, rs, res)
	if err != nil {
		return err
	}
	opts := compact.Options{MaxDeltas: c.MaxDeltas}
	var next *compact.Publication
	var files []compact.File
	if p.pub == nil {
		session, err := newSession()
		if err != nil {
			return err
		}
		next, files, err = compact.New(session, groups, c.Signer, opts)
		if err != nil {
			return err
		}
	} else if next, files, err = p.pub.Next(groups, c.Signer, opts); err != nil {
		return err
	}
	if len(files) == 0 {
		return nil // nothing changed
	}
	h, err := v.compactHead(ctx, p, next, files)
	if err != nil {
		return err
	}
	if err := c.Store.PutHead(ctx, cache.CompactKey(p.key), h); err != nil {
		return fmt.Errorf("store compact serial %d: %w", next.Serial, err)
	}
	p.pub, p.head = next, h
	v.mu.Lock()
	v.n.compactSerials++
	v.mu.Unlock()
	v.log.Info("compact: published", "repo", p.name, "session", next.Session, "serial", next.Serial, "cas", len(groups), "files", len(files))
	return nil
}

// newSession returns a random session id (RFC 4122 version 4). A
// publication starts a session only when it has no stored state to
// continue: a node that lost its state must never reuse a session a
// client has seen, so the id cannot be derived from the repository.
func newSession() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("compact session: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

// compactGroups returns the compact groups of the points of res that
// publish in rs's repository, sorted by URI: those whose fingerprint did
// not change are taken from the last build, the others built.
func (v *Validator) compactGroups(ctx context.Context, p *compactPub, rs *repoState, res *rpki.Result) ([]*irpkipb.CompactCA, error) {
	failedTA := failedTAs(res)
	notify := make(map[string]string, len(res.Points))
	for i := range res.Points {
		notify[res.Points[i].URI] = res.Points[i].CA.Notify
	}
	var mine []string
	fps := map[string][sha256.Size]byte{}
	changed := map[string]bool{}
	for i := range res.Points {
		pt := &res.Points[i]
		if rs.groups[pt.Manifest[:strings.LastIndexByte(pt.Manifest, '/')+1]] == nil {
			continue // published in another repository
		}
		if _, dup := fps[pt.URI]; dup {
			continue // a TA reached twice under one name: Build keeps one
		}
		fp := v.fingerprint(pt, notify[pt.Parent], p.b.OmitCertificates)
		fps[pt.URI] = fp
		mine = append(mine, pt.URI)
		if g, ok := p.groups[pt.URI]; !ok || g.fp != fp {
			changed[pt.URI] = true
		}
	}
	built, err := p.b.BuildSome(ctx, v.src, res, v.cfg.Compact.Signer, func(pt *rpki.Point) bool { return changed[pt.URI] })
	if err != nil {
		return nil, err
	}
	next := make(map[string]builtGroup, len(mine))
	for _, g := range built {
		next[g.Uri] = builtGroup{fp: fps[g.Uri], g: g}
	}
	out := make([]*irpkipb.CompactCA, 0, len(mine))
	for _, uri := range mine {
		bg, ok := next[uri]
		if !ok {
			bg = p.groups[uri]
			next[uri] = bg
		}
		out = append(out, bg.g)
	}
	// The groups of a trust anchor that could not be used in this run (its
	// certificate not fetched, say: this node's trouble, not the
	// repository's) stay as they were.
	for uri, bg := range p.groups {
		if _, ok := next[uri]; !ok && failedTA[bg.g.Ta] {
			next[uri] = bg
			out = append(out, bg.g)
		}
	}
	p.groups = next
	slices.SortFunc(out, func(a, b *irpkipb.CompactCA) int { return strings.Compare(a.Uri, b.Uri) })
	return out, nil
}

// failedTAs returns the trust anchors of res whose TA certificate could
// not be used.
func failedTAs(res *rpki.Result) map[string]bool {
	out := map[string]bool{}
	valid := map[string]bool{}
	for _, ca := range res.CAs {
		if ca.Err == nil {
			valid[ca.TA] = true
		}
	}
	for _, ca := range res.CAs {
		if ca.Err != nil && !valid[ca.TA] {
			out[ca.TA] = true
		}
	}
	return out
}

// fingerprint identifies what the compact group of pt is made of: the
// point's names, its CA certificate, the hashes of its manifest and CRL
// and of every object that validated. The signer and the lean setting are
// the same for all the groups of a publication (a Validator keeps them for
// its life: a new key or setting takes a restart, which builds every
// group once).
//
// A lean group (lean) carries a CA record instead of the certificate: the
// CA's resources as resolved along the chain and whether its rpkiNotify is
// its issuer's (issuerNotify), which a certificate that inherits or a new
// issuer change without a change of the point's own objects: the record
// itself is part of the fingerprint then.
func (v *Validator) fingerprint(pt *rpki.Point, issuerNotify string, lean bool) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	obj := func(uri string) {
		str(uri)
		sum, err := v.src.ObjectHash(uri)
		if err == nil {
			h.Write(sum[:])
		}
	}
	str(pt.TA)
	str(pt.URI)
	str(pt.Parent)
	c := sha256.Sum256(pt.CA.Raw)
	h.Write(c[:])
	obj(pt.Manifest)
	obj(pt.CRL)
	for _, o := range pt.Objects {
		obj(o)
	}
	if lean && pt.Parent != "" {
		if sum, err := compact.CARecordSum(pt.CA, issuerNotify); err == nil {
			h.Write(sum[:])
		} else {
			str(err.Error()) // BuildSome reports it
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// compactHead stores the blobs of files and returns the head of next: its
// notification, the snapshot and deltas it names, and the files of the
// last head that left it, until their retention ends.
func (v *Validator) compactHead(ctx context.Context, p *compactPub, next *compact.Publication, files []compact.File) (*follow.Head, error) {
	c := v.cfg.Compact
	now := v.cfg.Now()
	h := &follow.Head{Repo: p.key, Session: next.Session, Serial: next.Serial, Origin: irpki.FormatBin, Time: now}
	current := map[string]bool{}
	for _, f := range files {
		if f.Name == compact.NotificationName {
			h.NotificationBin = f.Data
			continue
		}
		current[f.Name] = true
		kind, serial := compactKind(f.Name, next)
		plain := sha256.Sum256(f.Data)
		if err := c.Store.PutBlob(ctx, plain, f.Data); err != nil {
			return nil, fmt.Errorf("store %s: %w", f.Name, err)
		}
		h.Files = append(h.Files, follow.File{Path: f.Name, Sum: plain, Size: int64(len(f.Data)), Format: irpki.FormatBin, Kind: kind, Serial: serial})
		gz, err := gzipCopy(f.Data, c.GzipLevel)
		if err != nil {
			return nil, fmt.Errorf("gzip %s: %w", f.Name, err)
		}
		if gz != nil {
			sum := sha256.Sum256(gz)
			if err := c.Store.PutBlob(ctx, sum, gz); err != nil {
				return nil, fmt.Errorf("store the gzip copy of %s: %w", f.Name, err)
			}
			h.Files = append(h.Files, follow.File{Path: f.Name, Sum: sum, Size: int64(len(gz)), Format: irpki.FormatBin, Kind: kind, Serial: serial, Gzip: true})
		}
	}
	if h.NotificationBin == nil {
		return nil, errors.New("compact: no notification among the files")
	}
	listed := map[string]bool{}
	for _, d := range next.Deltas {
		listed[d.Name] = true
	}
	if p.head != nil {
		for _, f := range p.head.Files {
			if current[f.Path] {
				continue
			}
			switch {
			case listed[f.Path]:
				// A delta the new notification still lists: current.
			case f.Expires.IsZero():
				f.Expires = now.Add(c.Retention)
			}
			if f.Live(now) {
				h.Files = append(h.Files, f)
			}
		}
	}
	return h, nil
}

// compactKind returns the kind and serial of the file called name of
// publication next: its snapshot, or one of its deltas.
func compactKind(name string, next *compact.Publication) (rrdpxml.Kind, uint64) {
	for _, d := range next.Deltas {
		if d.Name == name {
			return rrdpxml.KindDelta, d.Serial
		}
	}
	if path.Base(name) == "delta.bin" {
		return rrdpxml.KindDelta, next.Serial
	}
	return rrdpxml.KindSnapshot, next.Serial
}

// gzipCopy returns the gzip copy of b, or nil when it saves less than an
// eighth (the protobuf of signatures and keys hardly compresses). The
// header has no name and no time: the same bytes give the same copy.
func gzipCopy(b []byte, level int) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > len(b)-len(b)/8 {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// loadCompact continues p from its stored head, if there is one.
func (v *Validator) loadCompact(ctx context.Context, p *compactPub) error {
	c := v.cfg.Compact
	if c.Head == nil {
		return nil
	}
	h := c.Head(cache.CompactKey(p.key))
	if h == nil || h.NotificationBin == nil {
		return nil
	}
	p.head = h // its files are retained by a new session if this fails
	read := func(name string) ([]byte, error) {
		for _, f := range h.Files {
			if f.Path == name && !f.Gzip {
				return v.cfg.Open(ctx, f)
			}
		}
		return nil, fmt.Errorf("%s: not in the stored head", name)
	}
	pub, err := compact.Load(h.NotificationBin, read)
	if err != nil {
		return err
	}
	p.pub = pub
	// The groups are rebuilt once (the fingerprints are not stored); the
	// same state gives the same bytes, hence no new serial.
	return nil
}
