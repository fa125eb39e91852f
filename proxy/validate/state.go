package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// object is one RPKI object of a repository's state: a view into a part
// of the snapshot.bin it was read from, or a copy (see view.go).
type object struct {
	b   []byte
	sum [sha256.Size]byte
}

// group is a publication point's objects (a .bin group), by name. Groups
// are immutable once loaded: successive states of a repository share the
// groups whose pin did not change.
type group struct {
	pin  [sha256.Size]byte
	objs map[string]object
	// parts are the blobs of a composite snapshot its objects are views
	// into; copied counts the bytes of the objects copied from deltas.
	parts  []part
	copied int64
}

// repoState is the objects of one repository at one head.
type repoState struct {
	key, name string
	session   string
	serial    uint64
	resets    uint64
	// id is the SHA-256 of the snapshot file read: the same objects
	// give the same id (the follower's snapshots are canonical).
	id      [sha256.Size]byte
	groups  map[string]*group // by directory URI
	objects int
	// read and reused count the groups read and taken over; views and
	// copies the objects read as views and as copies.
	read, reused  int
	views, copies int
}

// snapshotFile returns the snapshot file of h's current serial: the .bin
// one if there is one, else the XML one.
func snapshotFile(h *follow.Head) (follow.File, bool) {
	var xml follow.File
	found := false
	for _, f := range h.Files {
		if f.Kind != rrdpxml.KindSnapshot || f.Gzip || !f.Expires.IsZero() || f.Serial != h.Serial {
			continue
		}
		if f.Format == irpki.FormatBin {
			return f, true
		}
		xml, found = f, true
	}
	return xml, found
}

// headID returns the identity of h's state, the SHA-256 of its snapshot.
func headID(h *follow.Head) ([sha256.Size]byte, error) {
	f, ok := snapshotFile(h)
	if !ok {
		return [sha256.Size]byte{}, fmt.Errorf("head of %s serial %d names no snapshot", h.Repo, h.Serial)
	}
	return f.Sum, nil
}

// maxDeltaLoad caps the deltas load applies to the previous state; further
// behind, it reads the snapshot.
const maxDeltaLoad = 64

// load returns the objects of h: the previous state (prev, or nil) with
// the .bin deltas h lists since applied, or else h's snapshot, taking over
// from prev every group whose pin is the same. The time it takes is added
// to v.readDur.
func (v *Validator) load(ctx context.Context, key, name string, h *follow.Head, prev *repoState) (*repoState, error) {
	start := time.Now()
	defer func() { v.readDur += time.Since(start) }()
	rs, err := v.loadDeltas(ctx, key, name, h, prev)
	if rs != nil {
		return rs, nil
	}
	if err != nil {
		v.log.Warn("validation: cannot apply the deltas, reading the snapshot", "repo", name, "serial", h.Serial, "err", err)
	}
	return v.loadSnapshot(ctx, key, name, h, prev)
}

// loadDeltas applies to prev the .bin deltas that h lists for the serials
// after prev's. It returns nil and no error when h does not list them all
// (another session, a downstream reset, a transparent delta without .bin,
// too far behind).
func (v *Validator) loadDeltas(ctx context.Context, key, name string, h *follow.Head, prev *repoState) (*repoState, error) {
	if prev == nil || prev.session != h.Session || prev.resets != h.Resets || h.Serial <= prev.serial || h.Serial-prev.serial > maxDeltaLoad {
		return nil, nil
	}
	id, err := headID(h)
	if err != nil {
		return nil, nil
	}
	deltas := map[uint64]follow.File{}
	for _, f := range h.Files {
		if f.Kind == rrdpxml.KindDelta && f.Format == irpki.FormatBin && !f.Gzip && f.Expires.IsZero() {
			deltas[f.Serial] = f
		}
	}
	for s := prev.serial + 1; s <= h.Serial; s++ {
		if _, ok := deltas[s]; !ok {
			return nil, nil
		}
	}
	rs := &repoState{key: key, name: name, session: h.Session, serial: h.Serial, resets: h.Resets, id: id, groups: maps.Clone(prev.groups)}
	copied := map[string]*group{} // the groups this load changes, copied from prev's
	for s := prev.serial + 1; s <= h.Serial; s++ {
		f := deltas[s]
		b, err := v.cfg.Open(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", f.Path, err)
		}
		if int64(len(b)) != f.Size {
			return nil, fmt.Errorf("%s has %d bytes, the head says %d", f.Path, len(b), f.Size)
		}
		rd := irpki.NewReader(bytes.NewReader(b), rrdpxml.KindDelta, v.cfg.Limits)
		hdr, err := rd.Header()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		if hdr.Serial != s {
			return nil, fmt.Errorf("%s: serial %d, want %d", f.Path, hdr.Serial, s)
		}
		for {
			g, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			ng := copied[g.Repo]
			if ng == nil {
				// No pin: the next snapshot read reads it again.
				ng = &group{objs: map[string]object{}}
				if old := rs.groups[g.Repo]; old != nil {
					ng.objs, ng.parts, ng.copied = maps.Clone(old.objs), old.parts, old.copied
				}
				copied[g.Repo] = ng
				rs.groups[g.Repo] = ng
				rs.read++
			}
			for _, e := range g.Withdrawn {
				delete(ng.objs, e.Name)
			}
			for _, e := range g.Entries {
				c := bytes.Clone(e.Content) // e aliases the reader's buffer
				ng.objs[e.Name] = object{b: c, sum: sha256.Sum256(c)}
				ng.copied += int64(len(c))
				rs.copies++
			}
		}
	}
	for dir, g := range copied {
		if len(g.objs) == 0 {
			delete(rs.groups, dir)
		}
	}
	if stale, limit, err := v.stale(ctx, rs, h); err != nil || stale > limit {
		// Read the snapshot instead: its objects are views of the
		// current parts, and the stale ones are let go.
		v.log.Info("validation: reading the snapshot, not the deltas", "repo", name, "serial", h.Serial, "stale", stale, "limit", limit, "err", err)
		return nil, nil
	}
	rs.reused = len(rs.groups) - len(copied)
	v.mu.Lock()
	v.n.deltaLoads++
	v.mu.Unlock()
	for _, g := range rs.groups {
		rs.objects += len(g.objs)
	}
	return rs, nil
}

// loadSnapshot reads the objects of h's snapshot, taking over from prev
// every group whose pin is the same.
func (v *Validator) loadSnapshot(ctx context.Context, key, name string, h *follow.Head, prev *repoState) (*repoState, error) {
	f, ok := snapshotFile(h)
	if !ok {
		return nil, fmt.Errorf("load %s serial %d: the head names no snapshot", name, h.Serial)
	}
	rs := &repoState{key: key, name: name, session: h.Session, serial: h.Serial, resets: h.Resets, id: f.Sum, groups: map[string]*group{}}
	var err error
	if f.Format == irpki.FormatBin && f.Composite() {
		var fp *fileParts
		if fp, err = v.openParts(ctx, f); err != nil {
			return nil, fmt.Errorf("load %s serial %d: %w", name, h.Serial, err)
		}
		err = v.loadBin(rs, fp.Reader(), f, fp, prev)
	} else {
		var b []byte
		if b, err = v.cfg.Open(ctx, f); err != nil {
			return nil, fmt.Errorf("load %s serial %d: open %s: %w", name, h.Serial, f.Path, err)
		}
		if int64(len(b)) != f.Size {
			return nil, fmt.Errorf("load %s serial %d: %s has %d bytes, the head says %d", name, h.Serial, f.Path, len(b), f.Size)
		}
		if f.Format == irpki.FormatBin {
			err = v.loadBin(rs, bytes.NewReader(b), f, nil, prev)
		} else {
			err = v.loadXML(rs, b)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load %s serial %d: %s: %w", name, h.Serial, f.Path, err)
	}
	for _, g := range rs.groups {
		rs.objects += len(g.objs)
	}
	return rs, nil
}

// loadBin reads the snapshot.bin f from r into rs. Its objects are views
// into fp's parts when fp is set (f composite), otherwise copies. A group
// of prev with the same pin is taken over when its objects are views of
// the same kind still current (copies, or views of fp's parts); otherwise
// it is read again, its objects' hashes taken from prev (the same pin,
// the same bytes).
func (v *Validator) loadBin(rs *repoState, r io.Reader, f follow.File, fp *fileParts, prev *repoState) error {
	rd := irpki.NewReader(r, rrdpxml.KindSnapshot, v.cfg.Limits)
	for {
		g, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		var old *group
		if prev != nil {
			if o := prev.groups[g.Repo]; o != nil && o.pin == g.Pin && g.Pin != ([sha256.Size]byte{}) {
				old = o
			}
		}
		if old != nil && (fp == nil && len(old.parts) == 0 || fp != nil && old.current(fp.sums)) {
			rs.groups[g.Repo] = old
			rs.reused++
			continue
		}
		ng := &group{pin: g.Pin, objs: make(map[string]object, len(g.Entries))}
		for _, e := range g.Entries {
			var o object
			viewed := false
			if fp != nil {
				var p part
				if o.b, p, viewed = fp.view(e.Offset, len(e.Content)); viewed {
					if !bytes.Equal(o.b, e.Content) {
						return fmt.Errorf("object %s%s: the part list does not hold it at byte %d", g.Repo, e.Name, e.Offset)
					}
					ng.parts = addPart(ng.parts, p)
					rs.views++
				}
			}
			if !viewed {
				o.b = bytes.Clone(e.Content) // e aliases the reader's buffer
				rs.copies++
			}
			if oo, ok := old.obj(e.Name); ok {
				o.sum = oo.sum
			} else {
				o.sum = sha256.Sum256(o.b)
			}
			ng.objs[e.Name] = o
		}
		rs.groups[g.Repo] = ng
		rs.read++
	}
	if rd.Sum() != f.Sum {
		return fmt.Errorf("SHA-256 %x, the head says %x", rd.Sum(), f.Sum)
	}
	return nil
}

// obj returns the object name of g, a nil g holding none.
func (g *group) obj(name string) (object, bool) {
	if g == nil {
		return object{}, false
	}
	o, ok := g.objs[name]
	return o, ok
}

// loadXML reads an XML snapshot; its groups have no pin and are never
// taken over. b is checked already (Open reads it by its hash from the
// cache, which checks every blob against its key), so the decoder does
// not hash it again.
func (v *Validator) loadXML(rs *repoState, b []byte) error {
	dec := rrdpxml.NewDecoderUnhashed(bytes.NewReader(b), v.cfg.Limits)
	if _, err := dec.Header(); err != nil {
		return err
	}
	for {
		el, err := dec.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if el.Withdraw {
			continue
		}
		i := strings.LastIndexByte(el.URI, '/')
		dir, name := el.URI[:i+1], el.URI[i+1:]
		g := rs.groups[dir]
		if g == nil {
			g = &group{objs: map[string]object{}}
			rs.groups[dir] = g
			rs.read++
		}
		c := bytes.Clone(el.Content)
		g.objs[name] = object{b: c, sum: sha256.Sum256(c)}
		rs.copies++
	}
}

// union is the objects of every repository, by directory URI: what one
// run validates. A directory in two repositories is taken from the first
// by key.
type union map[string]*group

// unionOf returns the union of repos, with over (if set) in place of the
// repository of its key.
func unionOf(repos map[string]*repoState, over *repoState) union {
	keys := make([]string, 0, len(repos)+1)
	for k := range repos {
		keys = append(keys, k)
	}
	if over != nil && repos[over.key] == nil {
		keys = append(keys, over.key)
	}
	slices.Sort(keys)
	u := union{}
	for _, k := range keys {
		rs := repos[k]
		if over != nil && k == over.key {
			rs = over
		}
		for dir, g := range rs.groups {
			if _, ok := u[dir]; !ok {
				u[dir] = g
			}
		}
	}
	return u
}

// source is the rpki.Source (and rpki.Hasher) of the Validator's runs:
// the union set before each run, which runs serialised by Validator.mu
// read.
type source struct {
	u union
}

func (s *source) lookup(uri string) (object, error) {
	i := strings.LastIndexByte(uri, '/')
	if i < 0 {
		return object{}, fmt.Errorf("object %s: not a URI: %w", uri, fs.ErrNotExist)
	}
	if g := s.u[uri[:i+1]]; g != nil {
		if o, ok := g.objs[uri[i+1:]]; ok {
			return o, nil
		}
	}
	return object{}, fmt.Errorf("object %s: %w", uri, fs.ErrNotExist)
}

// Object returns the object at uri, at most max bytes.
func (s *source) Object(uri string, max int64) ([]byte, error) {
	o, err := s.lookup(uri)
	if err != nil {
		return nil, err
	}
	if int64(len(o.b)) > max {
		return nil, fmt.Errorf("object %s: %d bytes: %w (max %d)", uri, len(o.b), rpki.ErrTooLarge, max)
	}
	return o.b, nil
}

// ObjectHash returns the SHA-256 of the object at uri without reading it.
func (s *source) ObjectHash(uri string) ([sha256.Size]byte, error) {
	o, err := s.lookup(uri)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return o.sum, nil
}

var _ rpki.Hasher = (*source)(nil)

// errNoTAL wraps the reason a run validated nothing.
var errNoTAL = errors.New("no trust anchor could be used")
