package follow

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// seed makes Start the current state: its objects are read back from
// its .bin snapshot, its listed deltas stay listed. Start stays the
// previous head in any case, so its files keep their retention and no
// later head reuses its served session at a serial not above its own;
// when its blobs cannot be read back, the first sync takes the snapshot.
func (f *Follower) seed(ctx context.Context, h *Head) {
	st, err := f.rebuild(ctx, h)
	if err != nil {
		f.count(func(s *Stats) { s.StartFailures++ })
		f.log.Warn("cannot continue from the stored head; taking the snapshot", "err", err, "session", h.Session, "serial", h.Serial)
		return
	}
	f.mu.Lock()
	f.cur = st
	f.mu.Unlock()
	f.log.Info("continuing from the stored head", "session", h.Session, "serial", h.Serial, "objects", len(st.objects), "deltas", len(st.held))
}

// rebuild returns the state h was published for.
func (f *Follower) rebuild(ctx context.Context, h *Head) (*state, error) {
	if h.Repo != "" && h.Repo != f.cfg.URL {
		return nil, fmt.Errorf("head of %s, not of %s", h.Repo, f.cfg.URL)
	}
	if t := f.transparent(h.Origin); h.Transparent != t {
		// Its XML is at other paths, in other bytes: the first sync
		// takes the snapshot and publishes the mode configured.
		return nil, fmt.Errorf("head of %s serial %d: transparent %v, configured %v", h.Repo, h.Serial, h.Transparent, t)
	}
	xs, bs := h.Sessions()
	st := &state{session: h.Session, serial: h.Serial, format: h.Origin, resets: h.Resets, held: map[uint64]heldDelta{}, transparent: f.transparent(h.Origin)}
	var snap *File
	for i, fl := range h.Files {
		if !fl.Expires.IsZero() {
			continue
		}
		switch fl.Kind {
		case rrdpxml.KindSnapshot:
			if fl.Format == irpki.FormatBin && !fl.Gzip && fl.Serial == h.Serial {
				snap = &h.Files[i]
			}
		case rrdpxml.KindDelta:
			d := st.held[fl.Serial]
			d.files = append(d.files, fl)
			if fl.Upstream != ([32]byte{}) {
				d.upstream = fl.Upstream
			}
			st.held[fl.Serial] = d
		}
	}
	if snap == nil {
		return nil, fmt.Errorf("head of %s serial %d names no .bin snapshot", h.Repo, h.Serial)
	}
	if snap.Composite() {
		// Part by part, the objects views into the segments (views.go).
		sv, err := readSnapshotViews(ctx, snap, bs, h.Serial, f.cfg.Limits, f.cfg.Blobs)
		if err != nil {
			return nil, fmt.Errorf("read snapshot %s: %w", snap.Path, err)
		}
		if sv.copied > 0 {
			f.log.Warn("objects of the stored snapshot not within one segment, copied", "snapshot", snap.Path, "objects", sv.copied)
		}
		st.objects, st.order = sv.objects, sv.order
		f.resumeFragments(ctx, h, st, xs, bs, sv)
	} else {
		b, err := cache.ReadFile(ctx, snap, f.cfg.Blobs)
		if err != nil {
			return nil, fmt.Errorf("read snapshot %s: %w", snap.Path, err)
		}
		if sha256.Sum256(b) != snap.Sum {
			return nil, fmt.Errorf("read snapshot %s: %w", snap.Path, ErrHash)
		}
		if st.objects, err = readSnapshot(b, irpki.FormatBin, bs, h.Serial, f.cfg.Limits); err != nil {
			return nil, fmt.Errorf("read snapshot %s: %w", snap.Path, err)
		}
	}
	if st.transparent {
		f.resumeOrigin(ctx, h, st)
	}
	st.deltaHashes = make(map[uint64][32]byte, len(st.held))
	for s, d := range st.held {
		var x, p *File
		for i, fl := range d.files {
			switch {
			case fl.Gzip:
			case fl.Format == irpki.FormatXML:
				x = &d.files[i]
			default:
				p = &d.files[i]
			}
		}
		if d.upstream == ([32]byte{}) && h.Resets == 0 {
			// A head written before File.Upstream: the upstream's bytes
			// are the origin format's file.
			if h.Origin == irpki.FormatXML && x != nil && xs == h.Session {
				d.upstream = x.Sum
			} else if h.Origin == irpki.FormatBin && p != nil {
				d.upstream = p.Sum
			}
		}
		// A transparent head holds deltas outside the .bin chain as XML
		// only.
		if x == nil || p == nil && !h.Transparent || d.upstream == ([32]byte{}) {
			delete(st.held, s) // no longer listed; retained as a file
			continue
		}
		st.held[s] = d
		st.deltaHashes[s] = d.upstream
	}
	return st, nil
}

// resumeFragments gives st, the state of the composite head h, the
// fragments of its snapshot (resume), and makes its objects share their
// bytes with the stored .bin segments. On failure the next serial builds
// every chunk, which costs time, not correctness.
func (f *Follower) resumeFragments(ctx context.Context, h *Head, st *state, xs, bs string, sv *snapshotViews) {
	var snap [4]*File
	for i, fl := range h.Files {
		if fl.Kind != rrdpxml.KindSnapshot || !fl.Expires.IsZero() || fl.Serial != h.Serial {
			continue
		}
		j := 0
		if fl.Format == irpki.FormatBin {
			j = 1
		}
		if fl.Gzip {
			j += 2
		}
		snap[j] = &h.Files[i]
	}
	if st.order == nil {
		st.order = sortedURIs(st.objects)
	}
	objs := func(u string) object { return st.objects[u] }
	fr, err := resume(ctx, st.order, objs, xs, bs, snap, f.cfg.Blobs, st.transparent, sv)
	if err != nil {
		f.log.Warn("the next serial encodes the whole snapshot", "err", err)
		return
	}
	fr.Realias(func(u string, c []byte) { o := st.objects[u]; o.content = c; st.objects[u] = o })
	f.release(fr)
	st.frags = fr
}

// resumeOrigin gives st, the state of the transparent head h, the
// segments of the origin's composite XML snapshot that h serves
// (resumeOrigin), for the next serial to reuse. A snapshot stored whole
// has none; on failure the next serial stores every segment afresh,
// which costs time, not correctness.
func (f *Follower) resumeOrigin(ctx context.Context, h *Head, st *state) {
	var x, z *File
	for i, fl := range h.Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Format == irpki.FormatXML && fl.Expires.IsZero() && fl.Serial == h.Serial {
			if fl.Gzip {
				z = &h.Files[i]
			} else {
				x = &h.Files[i]
			}
		}
	}
	if x == nil || z == nil || !x.Composite() {
		return
	}
	segs, err := resumeOrigin(ctx, x, z, f.cfg.Blobs)
	if err != nil {
		f.log.Warn("the next serial stores the origin's whole snapshot afresh", "err", err)
		return
	}
	st.xsegs = segs
}
