package repotest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Config describes a repository to create.
type Config struct {
	// Profile is the shape of the repository (see LookupProfile).
	Profile Profile
	// Seed determines every key, choice and URI of the repository.
	Seed int64
	// BaseURL is the https URL at which the directory will be served,
	// e.g. "https://localhost:8443/". Every https URI of the repository
	// starts with it; the rsync URIs use its host.
	BaseURL string
	// Split, if set, splits the tree over two RRDP repositories: the
	// member CAs with an odd ID (half of them, and every other one added
	// later) are delegated, as when a member runs its own publication
	// point on another host: their certificates stay in their parent's
	// publication point, in the first repository, while they publish
	// their own manifests, CRLs, ROAs and ASPAs in a second repository
	// served at this https URL, with its own notification, session and
	// serials, from the subdirectory "delegated" (SplitDir). Its rsync
	// URIs are rsync://HOST/delegated/..., HOST being Split's.
	Split string
}

// Options tune how the generator runs; they never change what it writes.
type Options struct {
	// KeyCache is a directory that keeps derived keys between runs (any
	// number of seeds may share one). Empty means no cache: every key is
	// derived again by every run, and kept in memory during it.
	KeyCache string
	// Workers is the number of goroutines that derive keys and sign.
	// Zero means GOMAXPROCS.
	Workers int
	// Progress receives a line every few seconds during long phases. Nil
	// means quiet.
	Progress io.Writer
}

// Repo is a repository on disk, opened for changes. It is not safe for
// concurrent use, and two Repos must not work on one directory at once.
type Repo struct {
	dir  string
	s    *state
	opts Options
	b    *builder
}

// File is an RRDP file of the repository.
type File struct {
	Serial uint64
	// Path is relative to the repository directory, with slashes; the
	// URI of the file is the base URL followed by Path.
	Path string
	Hash [sha256.Size]byte
	Size int64
}

// Info describes the current state of a repository. BaseURL to Deltas
// describe the first RRDP repository, the TA's; Repositories describes
// every one (the first, and the second of a split tree).
type Info struct {
	Profile   Profile
	Seed      int64
	BaseURL   string
	SessionID string
	Serial    uint64
	// CAs counts the CAs, the TA included, and ROAs the ROAs, of the
	// whole tree; Objects counts the objects of the snapshot.
	CAs, ROAs, Objects int
	// Snapshot is the current snapshot; Deltas are the deltas the
	// notification lists, oldest first.
	Snapshot File
	Deltas   []File

	Repositories []Repository
}

// Repository describes one RRDP repository of a tree.
type Repository struct {
	// Dir is the directory served at BaseURL, relative to the
	// repository directory: "" for the first, SplitDir for the second.
	// The Paths of its Files are relative to it.
	Dir       string
	BaseURL   string
	SessionID string
	Serial    uint64
	// Objects counts the objects of its snapshot.
	Objects  int
	Snapshot File
	Deltas   []File
}

// Paths of the files of a repository, relative to its directory.
const (
	TALPath          = talFile
	TACertPath       = taCertFile
	VRPPath          = vrpFile
	NotificationPath = notificationFile
	// SplitDir is the directory of a split tree's second repository
	// (Config.Split), relative to the repository directory.
	SplitDir = splitDir
)

// Create builds a repository in dir, valid at now: serial 1 of a new
// session, a snapshot and no delta. dir may exist but must not hold a
// repository already.
func Create(dir string, cfg Config, now time.Time, opts Options) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("create repository in %s: it holds one already", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create repository in %s: %w", dir, err)
	}
	s, err := newState(cfg, now)
	if err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	for _, sv := range s.servers() {
		sv.Serial = 1
	}
	r := &Repo{dir: dir, s: s, opts: opts}
	if err := r.init(true); err != nil {
		return nil, err
	}
	if err := r.writeFirstSnapshot(); err != nil {
		return nil, err
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

// Open opens the repository in dir.
func Open(dir string, opts Options) (*Repo, error) {
	s, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	r := &Repo{dir: dir, s: s, opts: opts}
	if err := r.init(false); err != nil {
		return nil, err
	}
	return r, nil
}

// init prepares the keys: the EE pool, and with all every CA key (so that
// a cache fills in parallel, with progress).
func (r *Repo) init(all bool) error {
	if r.opts.Workers <= 0 {
		r.opts.Workers = runtime.GOMAXPROCS(0)
	}
	s := r.s
	r.b = &builder{s: s, keys: newKeyStore(s.seedBytes(), r.opts.KeyCache), workers: r.opts.Workers}
	labels := make([]string, 0, s.Profile.eeKeys())
	for i := range s.Profile.eeKeys() {
		labels = append(labels, eeKeyLabel(i))
	}
	if all {
		for _, ca := range s.CAs {
			labels = append(labels, caKeyLabel(ca.ID))
		}
	}
	p := newProgress(r.opts.Progress, "keys", len(labels))
	err := parallelFor(len(labels), r.opts.Workers, func(i int) error {
		_, err := r.b.keys.get(labels[i], strings.HasPrefix(labels[i], "ee-"))
		p.add(1)
		return err
	})
	if err != nil {
		return fmt.Errorf("derive keys: %w", err)
	}
	p.finish()
	for i := range s.Profile.eeKeys() {
		k, err := r.b.keys.get(eeKeyLabel(i), true)
		if err != nil {
			return fmt.Errorf("derive keys: %w", err)
		}
		r.b.pool = append(r.b.pool, k)
	}
	return nil
}

// points returns the CAs in the order of their publication points' URIs.
func (s *state) points(ids []int) []*caState {
	var cas []*caState
	for _, id := range ids {
		cas = append(cas, s.CAs[id])
	}
	slices.SortFunc(cas, func(a, b *caState) int { return strings.Compare(s.dir(a), s.dir(b)) })
	return cas
}

// writeFirstSnapshot builds every object and streams them into the
// snapshots, publication point after publication point.
func (r *Repo) writeFirstSnapshot() error {
	for _, sv := range r.s.servers() {
		if err := r.writeFirstSnapshotOf(sv); err != nil {
			return err
		}
	}
	return nil
}

// writeFirstSnapshotOf writes the first snapshot of repository sv.
func (r *Repo) writeFirstSnapshotOf(sv *server) error {
	s := r.s
	var ids []int
	for _, ca := range s.CAs {
		if s.serverOf(ca) == sv {
			ids = append(ids, ca.ID)
		}
	}
	cas := s.points(ids)
	rel := s.rrdpDir(sv, sv.Serial) + "snapshot.xml"
	f, err := createRRDP(r.root(sv), rel, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: sv.SessionID, Serial: sv.Serial})
	if err != nil {
		return err
	}
	label := "publication points"
	if sv.Dir != "" {
		label += " in " + sv.Dir
	}
	p := newProgress(r.opts.Progress, label, len(cas))
	count := 0
	err = orderedMap(len(cas), r.opts.Workers, func(i int) ([]object, error) {
		objs, err := r.b.point(work{ca: cas[i], all: true}, nil)
		p.add(1)
		return objs, err
	}, func(_ int, objs []object) error {
		for _, o := range objs {
			if err := f.w.Publish(o.uri, nil, o.der); err != nil {
				return err
			}
			count++
		}
		return nil
	})
	ref, err := f.close(sv.Serial, rel, err)
	if err != nil {
		return err
	}
	p.finish()
	sv.Snapshots = []fileRef{ref}
	sv.Objects = count
	return nil
}

// root is the directory of repository sv's files.
func (r *Repo) root(sv *server) string { return filepath.Join(r.dir, filepath.FromSlash(sv.Dir)) }

// Advance evolves the repository by n serials at now, one delta each (see
// the package documentation for what changes), and writes the new
// snapshot, notification and expected VRPs.
func (r *Repo) Advance(now time.Time, n int) error {
	if n < 0 {
		return fmt.Errorf("advance repository by %d serials: want at least 0", n)
	}
	if n == 0 {
		return nil
	}
	return r.update(now, false, n)
}

// ResetSession starts a new session at now: a new session id, serial 1, a
// snapshot and no delta. The objects stay the same, except what the time
// requires to reissue. A following Advance makes serials 2, 3 and so on.
func (r *Repo) ResetSession(now time.Time) error {
	return r.update(now, true, 0)
}

func (r *Repo) update(now time.Time, reset bool, n int) error {
	return r.run(now, reset, n, func() *change { return r.s.step(now, true) })
}

// run makes n serials (after a reset, if reset), each from the change
// that step makes of the state, in every repository the change touches,
// and writes the new snapshots, notifications and expected VRPs. Each
// change is applied before step is called again.
func (r *Repo) run(now time.Time, reset bool, n int, step func() *change) error {
	s := r.s
	if now.Unix() < s.Now {
		return fmt.Errorf("update repository at %v: before its last update, %v", now.UTC(), fromUnix(s.Now))
	}
	index := make(map[string][sha256.Size]byte, s.Objects)
	for _, sv := range s.servers() {
		if err := sv.scanSnapshot(r.root(sv), index); err != nil {
			return err
		}
	}
	overlay := map[string][]byte{}
	changed := map[*server]bool{}
	if reset {
		if _, err := r.apply(s.step(now, false), index, overlay); err != nil {
			return err
		}
		for _, sv := range s.servers() {
			sv.Resets++
			sv.SessionID = s.sessionID(sv, sv.Resets)
			sv.Serial = 1
			sv.Deltas = nil
			changed[sv] = true
		}
	}
	for range n {
		elems, err := r.apply(step(), index, overlay)
		if err != nil {
			return err
		}
		for _, sv := range s.servers() {
			var mine []element
			for _, e := range elems {
				if s.serverOfURI(e.uri) == sv {
					mine = append(mine, e)
				}
			}
			if len(mine) == 0 {
				continue // RFC 8182: a delta has at least one element
			}
			sv.Serial++
			ref, err := s.writeDelta(r.root(sv), sv, mine)
			if err != nil {
				return err
			}
			sv.Deltas = append(sv.Deltas, ref)
			if len(sv.Deltas) > keepDeltas {
				sv.Deltas = slices.Delete(sv.Deltas, 0, len(sv.Deltas)-keepDeltas)
			}
			changed[sv] = true
		}
	}
	for _, sv := range s.servers() {
		if !changed[sv] {
			continue
		}
		ref, count, err := s.mergeSnapshot(r.root(sv), sv, overlay)
		if err != nil {
			return err
		}
		want := 0
		for uri := range index {
			if s.serverOfURI(uri) == sv {
				want++
			}
		}
		if count != want {
			return fmt.Errorf("new snapshot of %s has %d objects, want %d", sv.BaseURL, count, want)
		}
		sv.Snapshots = append(sv.Snapshots, ref)
		sv.Objects = count
		if len(sv.Snapshots) > keepSnapshots {
			for _, old := range sv.Snapshots[:len(sv.Snapshots)-keepSnapshots] {
				os.Remove(filepath.Join(r.root(sv), filepath.FromSlash(old.Path)))
			}
			sv.Snapshots = slices.Delete(sv.Snapshots, 0, len(sv.Snapshots)-keepSnapshots)
		}
	}
	return r.finish()
}

// apply builds what c changed, updates index and overlay, and returns the
// elements of the delta, sorted by URI.
func (r *Repo) apply(c *change, index map[string][sha256.Size]byte, overlay map[string][]byte) ([]element, error) {
	s := r.s
	ids := make([]int, 0, len(c.points))
	for id := range c.points {
		ids = append(ids, id)
	}
	cas := s.points(ids)
	results := make([][]object, len(cas))
	hashOf := func(uri string) ([sha256.Size]byte, bool) {
		h, ok := index[uri]
		return h, ok
	}
	p := newProgress(r.opts.Progress, "changed publication points", len(cas))
	err := orderedMap(len(cas), r.opts.Workers, func(i int) ([]object, error) {
		objs, err := r.b.point(*c.points[cas[i].ID], hashOf)
		p.add(1)
		return objs, err
	}, func(i int, objs []object) error {
		results[i] = objs
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cas) > 1000 {
		p.finish()
	}
	var elems []element
	published := map[string]bool{}
	for _, objs := range results {
		for _, o := range objs {
			e := element{uri: o.uri, der: o.der}
			if old, ok := index[o.uri]; ok {
				e.old = &old
			}
			elems = append(elems, e)
			index[o.uri] = o.hash
			overlay[o.uri] = o.der
			published[o.uri] = true
		}
	}
	for _, uri := range c.withdrawn {
		old, ok := index[uri]
		if !ok || published[uri] {
			return nil, fmt.Errorf("withdraw %s: not in the repository or published in the same step", uri)
		}
		elems = append(elems, element{uri: uri, withdraw: true, old: &old})
		delete(index, uri)
		overlay[uri] = nil
	}
	sortElements(elems)
	return elems, nil
}

// finish writes the files that follow the state: the TA certificate, the
// TAL, the expected VRPs, the state, and last the notification.
func (r *Repo) finish() error {
	s := r.s
	ta, err := r.b.taCert()
	if err != nil {
		return err
	}
	taKey, err := r.b.caKey(s.CAs[0])
	if err != nil {
		return err
	}
	tal, err := rpki.TAL([]string{s.BaseURL + taCertFile}, &taKey.PublicKey)
	if err != nil {
		return fmt.Errorf("write TAL: %w", err)
	}
	var vrps bytes.Buffer
	if err := rpki.WriteVRPCSV(&vrps, s.vrps()); err != nil {
		return fmt.Errorf("write expected VRPs: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{taCertFile, ta}, {talFile, tal}, {vrpFile, vrps.Bytes()}} {
		if err := publishFile(filepath.Join(r.dir, f.name), f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	if err := s.save(r.dir); err != nil {
		return err
	}
	for _, sv := range s.servers() {
		if err := sv.writeNotification(r.root(sv)); err != nil {
			return err
		}
	}
	return nil
}

// Info describes the repository.
func (r *Repo) Info() Info {
	s := r.s
	in := Info{Profile: s.Profile, Seed: s.Seed, BaseURL: s.BaseURL, SessionID: s.SessionID, Serial: s.Serial, Objects: s.Objects}
	for _, ca := range s.CAs {
		if ca != nil {
			in.CAs++
			in.ROAs += len(ca.ROAs)
		}
	}
	in.Snapshot = s.Snapshots[len(s.Snapshots)-1].file()
	for _, d := range s.Deltas {
		in.Deltas = append(in.Deltas, d.file())
	}
	for _, sv := range s.servers() {
		rp := Repository{Dir: sv.Dir, BaseURL: sv.BaseURL, SessionID: sv.SessionID, Serial: sv.Serial, Objects: sv.Objects,
			Snapshot: sv.Snapshots[len(sv.Snapshots)-1].file()}
		for _, d := range sv.Deltas {
			rp.Deltas = append(rp.Deltas, d.file())
		}
		in.Repositories = append(in.Repositories, rp)
	}
	return in
}

func (f fileRef) file() File {
	return File{Serial: f.Serial, Path: f.Path, Hash: [sha256.Size]byte(f.Hash), Size: f.Size}
}

// VRPs returns the Validated ROA Payloads that a relying party must
// output for the repository, sorted; expected-vrps.csv holds the same.
func (r *Repo) VRPs() []rpki.VRP { return r.s.vrps() }
