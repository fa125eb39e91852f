package compact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"google.golang.org/protobuf/proto"
)

// Version is the layout version in every compact file.
const Version = 1

// NotificationName is the notification's name in a repository's
// directory; the snapshot and deltas are named relative to it.
const NotificationName = "compact/notification.bin"

// File is one file to publish, named relative to the directory holding
// NotificationName's "compact/".
type File struct {
	Name string
	Data []byte
}

// DeltaRef is a delta the notification lists.
type DeltaRef struct {
	Serial uint64
	// Name is relative to the notification's directory.
	Name string
	Hash string
	Size int
}

// Publication is the compact state of one repository as published: its
// session, serial, groups and the deltas its notification lists, newest
// first.
type Publication struct {
	Session string
	Serial  uint64
	Groups  []*irpkipb.CompactCA
	Deltas  []DeltaRef
	// snapshotSize is the size of the snapshot, which bounds the deltas
	// listed.
	snapshotSize int
}

// Options tune a Publication's files. The zero value works.
type Options struct {
	// Base, if set, is the URL of the "compact/" directory ending in '/':
	// the notification then names absolute URIs. Empty: relative names,
	// resolved against the notification's URL.
	Base string
	// MaxDeltas caps the deltas listed (100); deltas are dropped too
	// once together they outweigh the snapshot, as RFC 8182 advises.
	MaxDeltas int
}

// New returns serial 1 of a new session with the groups, and its files.
func New(session string, groups []*irpkipb.CompactCA, s *Signer, o Options) (*Publication, []File, error) {
	p := &Publication{Session: session}
	return p.next(groups, s, o, false)
}

// Next returns the publication of groups as the serial after p, with a
// delta from p, and the files to add; p is unchanged. When groups equal
// p's it returns p and no file.
func (p *Publication) Next(groups []*irpkipb.CompactCA, s *Signer, o Options) (*Publication, []File, error) {
	return p.next(groups, s, o, true)
}

func (p *Publication) next(groups []*irpkipb.CompactCA, s *Signer, o Options, delta bool) (*Publication, []File, error) {
	if o.MaxDeltas <= 0 {
		o.MaxDeltas = 100
	}
	var files []File
	n := &Publication{Session: p.Session, Serial: p.Serial + 1, Groups: groups}
	dir := "compact/" + p.Session + "/" + strconv.FormatUint(n.Serial, 10) + "/"
	if delta {
		d := Diff(p.Groups, groups)
		if len(d) == 0 {
			return p, nil, nil
		}
		data := marshal(&irpkipb.CompactDelta{Serial: n.Serial, Session: n.Session, Cas: d, Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_DELTA})
		h := sha256.Sum256(data)
		name := dir + hex.EncodeToString(h[:8]) + "/delta.bin"
		files = append(files, File{Name: name, Data: data})
		n.Deltas = append(n.Deltas, DeltaRef{Serial: n.Serial, Name: name, Hash: hex.EncodeToString(h[:]), Size: len(data)})
		n.Deltas = append(n.Deltas, p.Deltas...)
	}
	snap := marshal(&irpkipb.CompactSnapshot{Serial: n.Serial, Session: n.Session, Cas: groups, Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_SNAPSHOT})
	h := sha256.Sum256(snap)
	snapName := dir + hex.EncodeToString(h[:8]) + "/snapshot.bin"
	files = append(files, File{Name: snapName, Data: snap})
	n.snapshotSize = len(snap)
	total := 0
	for i, d := range n.Deltas {
		total += d.Size
		if i >= o.MaxDeltas || total > len(snap) {
			n.Deltas = n.Deltas[:i]
			break
		}
	}
	uri := func(name string) string { return o.Base + name[len("compact/"):] }
	nt := &irpkipb.Notification{Serial: n.Serial, Session: n.Session, Snapshot: &irpkipb.SnapshotReference{Uri: uri(snapName), Hash: hex.EncodeToString(h[:])},
		Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_NOTIFICATION}
	for _, d := range n.Deltas {
		nt.Deltas = append(nt.Deltas, &irpkipb.DeltaReference{Uri: uri(d.Name), Hash: d.Hash, Serial: d.Serial})
	}
	nt.Signature, nt.MoreSignatures = s.sign(notificationLabel, marshal(nt))
	files = append(files, File{Name: NotificationName, Data: marshal(nt)})
	return n, files, nil
}

// Load returns the Publication that a notification describes (as written
// by New or Next), to continue from it: read returns a file by its File
// name ("compact/..."). The snapshot's and the deltas' hashes are checked;
// the notification's signature is not (these are the producer's own
// files).
func Load(notification []byte, read func(name string) ([]byte, error)) (*Publication, error) {
	var nt irpkipb.Notification
	if err := proto.Unmarshal(notification, &nt); err != nil {
		return nil, fmt.Errorf("load compact notification: %w", err)
	}
	if nt.Kind != irpkipb.FileKind_FILE_KIND_COMPACT_NOTIFICATION || nt.Snapshot == nil || len(nt.Snapshot.Hash) != 64 {
		return nil, errors.New("load compact notification: not a compact notification")
	}
	name := func(serial uint64, hash, file string) string {
		return "compact/" + nt.Session + "/" + strconv.FormatUint(serial, 10) + "/" + hash[:16] + "/" + file
	}
	snapName := name(nt.Serial, nt.Snapshot.Hash, "snapshot.bin")
	snapshot, err := read(snapName)
	if err != nil {
		return nil, fmt.Errorf("load compact snapshot: %w", err)
	}
	if err := checkHash(snapshot, nt.Snapshot.Hash); err != nil {
		return nil, fmt.Errorf("load compact snapshot %s: %w", snapName, err)
	}
	var snap irpkipb.CompactSnapshot
	if err := proto.Unmarshal(snapshot, &snap); err != nil {
		return nil, fmt.Errorf("load compact snapshot %s: %w", snapName, err)
	}
	p := &Publication{Session: nt.Session, Serial: nt.Serial, Groups: snap.Cas, snapshotSize: len(snapshot)}
	for _, d := range nt.Deltas {
		if len(d.Hash) != 64 {
			return nil, fmt.Errorf("load compact notification: delta %d: bad hash %q", d.Serial, d.Hash)
		}
		dn := name(d.Serial, d.Hash, "delta.bin")
		b, err := read(dn)
		if err != nil {
			return nil, fmt.Errorf("load compact delta: %w", err)
		}
		p.Deltas = append(p.Deltas, DeltaRef{Serial: d.Serial, Name: dn, Hash: d.Hash, Size: len(b)})
	}
	return p, nil
}

// Diff returns the changes from the groups old to new (both sorted by
// URI): a new group whole, a changed one with its header and the entries
// added, replaced and removed, a group gone as removed.
func Diff(old, new []*irpkipb.CompactCA) []*irpkipb.CompactDeltaCA {
	var out []*irpkipb.CompactDeltaCA
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || i < len(old) && old[i].Uri < new[j].Uri:
			out = append(out, &irpkipb.CompactDeltaCA{Uri: old[i].Uri, Removed: true})
			i++
		case i == len(old) || new[j].Uri < old[i].Uri:
			out = append(out, diffGroup(nil, new[j]))
			j++
		default:
			if !proto.Equal(old[i], new[j]) {
				out = append(out, diffGroup(old[i], new[j]))
			}
			i++
			j++
		}
	}
	return out
}

func diffGroup(old, g *irpkipb.CompactCA) *irpkipb.CompactDeltaCA {
	// The hash list is rebuilt by the client from the entries.
	m := proto.Clone(g.Manifest).(*irpkipb.Manifest)
	m.ManifestContent.Hashes.HashList = nil
	d := &irpkipb.CompactDeltaCA{Repo: g.Repo, Uri: g.Uri, Certificate: g.Certificate, Parent: g.Parent, Ta: g.Ta, Manifest: m, HashesOmitted: true}
	prev := map[string][]byte{}
	if old != nil && bytes.Equal(old.Certificate, g.Certificate) {
		d.Certificate = nil
	}
	if old != nil && m.Ca != nil && proto.Equal(old.Manifest.GetCa(), m.Ca) {
		m.Ca, d.CaOmitted = nil, true
	}
	if old != nil {
		for _, e := range old.Entries {
			prev[e.Name] = e.Content
		}
	}
	for _, e := range g.Entries {
		was, ok := prev[e.Name]
		delete(prev, e.Name)
		switch {
		case !ok:
			d.Modified = append(d.Modified, &irpkipb.DeltaEntry{Name: e.Name, Content: e.Content})
		case !bytes.Equal(was, e.Content):
			h := sha256.Sum256(was)
			d.Modified = append(d.Modified, &irpkipb.DeltaEntry{Name: e.Name, Hash: h[:], Content: e.Content})
		}
	}
	if old != nil {
		for _, e := range old.Entries {
			if was, ok := prev[e.Name]; ok {
				h := sha256.Sum256(was)
				d.Withdrawn = append(d.Withdrawn, &irpkipb.DeltaEntry{Name: e.Name, Hash: h[:]})
			}
		}
	}
	return d
}
