package compact

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"google.golang.org/protobuf/proto"
)

// Errors the client wraps, for callers that branch on them.
var (
	// ErrSignature: a signature does not verify, or no trusted key made it.
	ErrSignature = errors.New("bad signature")
	// ErrHash: a file or an entry does not have the hash that names it.
	ErrHash = errors.New("hash mismatch")
	// ErrExpired: an iMFT, a certificate or an object is outside its
	// validity window.
	ErrExpired = errors.New("expired")
	// ErrReplay: a notification or an iMFT older than one accepted before.
	ErrReplay = errors.New("replayed older state")
	// ErrMalformed: a file that does not decode as what it should be
	// (a truncated file, say).
	ErrMalformed = errors.New("malformed")
)

// Error says where a compact file failed: the file (its URL), the CA
// group (its URI) and the entry, each when known.
type Error struct {
	File, Group, Entry string
	Err                error
}

func (e *Error) Error() string {
	var b strings.Builder
	for _, s := range []string{e.File, e.Group, e.Entry} {
		if s != "" {
			b.WriteString(s + ": ")
		}
	}
	return b.String() + e.Err.Error()
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// verifySignature checks the signatures of a message, the primary and the
// more of a key rollover, over msg under label: it accepts when at least
// one is by a key of keys and verifies. A signature by a trusted key that
// does not verify (or of another algorithm) is a rejection, whatever the
// others: the message was changed after signing. A signature by a key not
// in keys is ignored.
func verifySignature(keys Keys, primary *irpkipb.Signature, more []*irpkipb.Signature, label string, msg []byte) error {
	var present []string
	good := 0
	for _, sig := range append([]*irpkipb.Signature{primary}, more...) {
		if sig == nil {
			continue
		}
		present = append(present, fmt.Sprintf("%x", sig.KeyId))
		k, ok := keys[string(sig.KeyId)]
		if !ok {
			continue
		}
		if sig.Algorithm != Algorithm {
			return fmt.Errorf("%w: the signature by trusted key %x is of algorithm %q, want %q", ErrSignature, sig.KeyId, sig.Algorithm, Algorithm)
		}
		if !ed25519.Verify(k, signedBytes(label, msg), sig.Signature) {
			return fmt.Errorf("%w: the %s signature by trusted key %x does not verify", ErrSignature, Algorithm, sig.KeyId)
		}
		good++
	}
	switch {
	case good > 0:
		return nil
	case len(present) == 0:
		return fmt.Errorf("%w: not signed", ErrSignature)
	case len(present) == 1:
		return fmt.Errorf("%w: signed by key %s, not a trusted key", ErrSignature, present[0])
	}
	return fmt.Errorf("%w: signed by keys %s, none of them a trusted key", ErrSignature, strings.Join(present, ", "))
}

// ParseNotification decodes a compact notification and checks its kind,
// version and signature.
func ParseNotification(data []byte, keys Keys) (*irpkipb.Notification, error) {
	var nt irpkipb.Notification
	if err := proto.Unmarshal(data, &nt); err != nil {
		return nil, fmt.Errorf("%w: notification: %w", ErrMalformed, err)
	}
	if nt.Kind != irpkipb.FileKind_FILE_KIND_COMPACT_NOTIFICATION || nt.Version != Version {
		return nil, fmt.Errorf("%w: kind %v version %d, want a compact notification of version %d", ErrMalformed, nt.Kind, nt.Version, Version)
	}
	if nt.Snapshot == nil || nt.Session == "" || nt.Serial == 0 {
		return nil, fmt.Errorf("%w: notification without snapshot, session or serial", ErrMalformed)
	}
	sig, more := nt.Signature, nt.MoreSignatures
	nt.Signature, nt.MoreSignatures = nil, nil
	err := verifySignature(keys, sig, more, notificationLabel, marshal(&nt))
	nt.Signature, nt.MoreSignatures = sig, more
	if err != nil {
		return nil, fmt.Errorf("notification: %w", err)
	}
	return &nt, nil
}

// State is what a client holds: the verified groups of one session and
// serial.
type State struct {
	Session string
	Serial  uint64
	groups  map[string]*irpkipb.CompactCA
}

// Groups returns the groups sorted by URI.
func (s *State) Groups() []*irpkipb.CompactCA {
	keys := slices.Sorted(maps.Keys(s.groups))
	out := make([]*irpkipb.CompactCA, len(keys))
	for i, k := range keys {
		out[i] = s.groups[k]
	}
	return out
}

// Issued returns the newest thisUpdate among the state's iMFTs: when the
// most recently reissued manifest of its CAs was issued, as the proxy
// validated and signed it. The notification carries no time, so this is
// the only signed clock a client has of a publication: a proxy whose own
// origin stopped, a server that keeps answering with an old notification
// or a cache replaying one all leave it where it was, while Verify
// refuses an iMFT only once its nextUpdate has passed. A client compares
// it with its clock (rrdp-proxy sync --max-stale). Zero for a state
// without groups.
func (s *State) Issued() time.Time {
	var t time.Time
	for _, g := range s.groups {
		if m := g.GetManifest(); m != nil {
			if nb := fromTimestamp(m.GetMeta().GetNotBefore()); nb.After(t) {
				t = nb
			}
		}
	}
	return t
}

func checkHash(data []byte, want string) error {
	h := sha256.Sum256(data)
	if got := hex.EncodeToString(h[:]); got != want {
		return fmt.Errorf("%w: SHA-256 %s, the notification says %s (%d bytes)", ErrHash, got, want, len(data))
	}
	return nil
}

// ParseSnapshot checks a snapshot against the hash, session and serial
// the notification gives and returns its state (not yet verified: see
// Verify).
func ParseSnapshot(data []byte, hash, session string, serial uint64) (*State, error) {
	if err := checkHash(data, hash); err != nil {
		return nil, err
	}
	var snap irpkipb.CompactSnapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %w", ErrMalformed, err)
	}
	if snap.Kind != irpkipb.FileKind_FILE_KIND_COMPACT_SNAPSHOT || snap.Version != Version {
		return nil, fmt.Errorf("%w: kind %v version %d, want a compact snapshot of version %d", ErrMalformed, snap.Kind, snap.Version, Version)
	}
	if snap.Session != session || snap.Serial != serial {
		return nil, fmt.Errorf("%w: snapshot of session %s serial %d, the notification says %s serial %d", ErrMalformed, snap.Session, snap.Serial, session, serial)
	}
	s := &State{Session: snap.Session, Serial: snap.Serial, groups: make(map[string]*irpkipb.CompactCA, len(snap.Cas))}
	for _, g := range snap.Cas {
		if _, dup := s.groups[g.Uri]; dup || g.Uri == "" {
			return nil, &Error{Group: g.Uri, Err: fmt.Errorf("%w: group listed twice or without uri", ErrMalformed)}
		}
		s.groups[g.Uri] = g
	}
	return s, nil
}

// ApplyDelta checks a delta against its hash and serial (s.Serial+1) and
// returns the state after it; s is unchanged.
func (s *State) ApplyDelta(data []byte, hash string) (*State, error) {
	if err := checkHash(data, hash); err != nil {
		return nil, err
	}
	var d irpkipb.CompactDelta
	if err := proto.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: delta: %w", ErrMalformed, err)
	}
	if d.Kind != irpkipb.FileKind_FILE_KIND_COMPACT_DELTA || d.Version != Version {
		return nil, fmt.Errorf("%w: kind %v version %d, want a compact delta of version %d", ErrMalformed, d.Kind, d.Version, Version)
	}
	if d.Session != s.Session || d.Serial != s.Serial+1 {
		return nil, fmt.Errorf("%w: delta of session %s serial %d, want %s serial %d", ErrMalformed, d.Session, d.Serial, s.Session, s.Serial+1)
	}
	n := &State{Session: s.Session, Serial: d.Serial, groups: maps.Clone(s.groups)}
	for _, dg := range d.Cas {
		if err := n.applyGroup(dg); err != nil {
			return nil, &Error{Group: dg.Uri, Err: err}
		}
	}
	return n, nil
}

func (s *State) applyGroup(dg *irpkipb.CompactDeltaCA) error {
	old, had := s.groups[dg.Uri]
	if dg.Removed {
		if !had {
			return fmt.Errorf("%w: removes a group the state lacks", ErrMalformed)
		}
		delete(s.groups, dg.Uri)
		return nil
	}
	entries := map[string][]byte{}
	if had {
		for _, e := range old.Entries {
			entries[e.Name] = e.Content
		}
	}
	for _, e := range dg.Modified {
		was, ok := entries[e.Name]
		switch {
		case ok && e.Hash == nil:
			return fmt.Errorf("%w: %s: replaced without the hash of the entry it replaces", ErrMalformed, e.Name)
		case !ok && e.Hash != nil:
			return fmt.Errorf("%w: %s: replaces an entry the state lacks", ErrMalformed, e.Name)
		case ok:
			if h := sha256.Sum256(was); string(h[:]) != string(e.Hash) {
				return fmt.Errorf("%w: %s: the entry replaced has SHA-256 %x, the delta says %x", ErrHash, e.Name, h, e.Hash)
			}
		}
		if e.Content == nil {
			return fmt.Errorf("%w: %s: modified without content", ErrMalformed, e.Name)
		}
		entries[e.Name] = e.Content
	}
	for _, e := range dg.Withdrawn {
		was, ok := entries[e.Name]
		if !ok {
			return fmt.Errorf("%w: %s: withdraws an entry the state lacks", ErrMalformed, e.Name)
		}
		if h := sha256.Sum256(was); string(h[:]) != string(e.Hash) {
			return fmt.Errorf("%w: %s: the entry withdrawn has SHA-256 %x, the delta says %x", ErrHash, e.Name, h, e.Hash)
		}
		delete(entries, e.Name)
	}
	g := &irpkipb.CompactCA{Repo: dg.Repo, Uri: dg.Uri, Certificate: dg.Certificate, Parent: dg.Parent, Ta: dg.Ta, Manifest: dg.Manifest}
	if dg.CaOmitted {
		if !had || old.Manifest.GetCa() == nil || g.Manifest == nil || g.Manifest.Ca != nil {
			return fmt.Errorf("%w: CA record omitted, but no CA record before or one in the delta", ErrMalformed)
		}
		g.Manifest = proto.Clone(g.Manifest).(*irpkipb.Manifest)
		g.Manifest.Ca = old.Manifest.Ca
	}
	if g.Certificate == nil && (g.Manifest == nil || g.Manifest.Ca == nil) {
		if !had {
			return fmt.Errorf("%w: a new group without its CA certificate", ErrMalformed)
		}
		g.Certificate = old.Certificate
	}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		g.Entries = append(g.Entries, &irpkipb.SnapshotEntry{Name: name, Content: entries[name]})
	}
	if dg.HashesOmitted {
		if g.Manifest == nil || g.Manifest.ManifestContent == nil || g.Manifest.ManifestContent.Hashes == nil || len(g.Manifest.ManifestContent.Hashes.HashList) > 0 {
			return fmt.Errorf("%w: hashes omitted, but no iMFT without a hash list", ErrMalformed)
		}
		m := proto.Clone(g.Manifest).(*irpkipb.Manifest)
		for _, e := range g.Entries {
			h := sha256.Sum256(e.Content)
			m.ManifestContent.Hashes.HashList = append(m.ManifestContent.Hashes.HashList, &irpkipb.ManifestHash{FileName: e.Name, Hash: h[:]})
		}
		g.Manifest = m
	}
	s.groups[dg.Uri] = g
	return nil
}

// Marshal encodes s for a client's state file (a CompactSnapshot).
func (s *State) Marshal() []byte {
	return marshal(&irpkipb.CompactSnapshot{Serial: s.Serial, Session: s.Session, Cas: s.Groups(), Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_SNAPSHOT})
}

// UnmarshalState decodes a state written by Marshal.
func UnmarshalState(data []byte) (*State, error) {
	var snap irpkipb.CompactSnapshot
	if err := proto.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("%w: state: %w", ErrMalformed, err)
	}
	s := &State{Session: snap.Session, Serial: snap.Serial, groups: make(map[string]*irpkipb.CompactCA, len(snap.Cas))}
	for _, g := range snap.Cas {
		s.groups[g.Uri] = g
	}
	return s, nil
}
