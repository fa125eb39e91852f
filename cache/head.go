package cache

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Head is one published state of a repository: what the proxy serves for
// it until the next head. It is the stored schema of the cache and of its
// tiers (disk, Redis), encoded by MarshalJSON (headVersion).
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
	// Transparent marks a head of an XML origin in transparent mode: the
	// NotificationXML is the origin's body and the XML Files are the
	// origin's bytes at the origin's paths.
	Transparent bool
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
	Path string
	// Sum is the SHA-256 of the bytes: the key of the blob, or for a
	// composite file (Index set) the hash of the assembled bytes (the
	// notification's), or for a composite gzip copy the Index itself.
	Sum    [32]byte
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
	// when the client accepts gzip.
	Gzip bool
	// Index, when not zero, makes the file composite: the key of a blob
	// holding its part list (EncodeParts), whose parts concatenated are
	// the file. Big snapshots are composite, so that successive serials
	// share the parts that did not change (fragments) instead of storing
	// and pinning the whole file again.
	Index [32]byte
}

// Composite reports whether f is stored as parts (Index).
func (f *File) Composite() bool { return f.Index != [32]byte{} }

// Key returns the blob that holds f, or its part list for a composite
// file.
func (f *File) Key() [32]byte {
	if f.Composite() {
		return f.Index
	}
	return f.Sum
}

// Live reports whether f is still to be kept at now: named by the
// notifications, or within its retention.
func (f *File) Live(now time.Time) bool {
	return f.Expires.IsZero() || now.Before(f.Expires)
}

// Sessions returns the sessions of the notifications h serves, XML and
// .bin: Session itself for an XML origin without resets (and for the XML
// of a transparent head always), otherwise sessions derived from it (see
// Resets).
func (h *Head) Sessions() (xml, bin string) {
	return ServedSessions(h.Session, h.Origin, h.Resets, h.Transparent)
}

// ServedSessions returns the sessions under which the proxy serves the
// state of upstream session u, origin format f, after resets downstream
// session resets: the .bin session is u itself until the first reset,
// then a name-based UUID of u and the reset count; the XML session is the
// .bin session for an XML origin and the one derived from it for a .bin
// origin (DESIGN.md). An edge that follows this proxy's .bin derives the
// same XML session. In transparent mode the XML is the origin's, under u
// whatever the resets.
func ServedSessions(u string, f irpki.Format, resets uint64, transparent bool) (xml, bin string) {
	bin = u
	if resets > 0 {
		bin = irpki.DerivedSession(fmt.Sprintf("%s reset %d", u, resets))
	}
	xml = bin
	switch {
	case transparent:
		xml = u
	case f == irpki.FormatBin:
		xml = irpki.DerivedSession(bin)
	}
	return xml, bin
}

// CompactKey returns the head key of the compact publication of the
// repository whose head key is repo: a head of its own (notification in
// NotificationBin, files under "compact/"), published by the validator
// independently of the repository's serials, since a compact serial
// follows validation (a revalidation, another repository's serial) as
// well as the repository.
func CompactKey(repo string) string { return repo + compactSuffix }

const compactSuffix = " compact"

// SameCompact reports whether a and b are one serial of a compact
// publication: the same signed notification. Its serials are counted by
// whoever signs them, so the same session and serial may be other bytes.
func SameCompact(a, b *Head) bool {
	return a != nil && b != nil && a.Session == b.Session && a.Serial == b.Serial &&
		bytes.Equal(a.NotificationBin, b.NotificationBin)
}

// CompactOf returns the repository key whose compact publication key is
// (CompactKey's inverse), and false for a key that is not one.
func CompactOf(key string) (repo string, ok bool) {
	repo, ok = strings.CutSuffix(key, compactSuffix)
	return repo, ok && repo != ""
}
