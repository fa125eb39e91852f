package irpki

import (
	"encoding/hex"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// MarshalNotification encodes n as notification.bin, deterministically.
// The references are written as n gives them: MapNotification maps an XML
// notification's references to the .bin files first.
func MarshalNotification(n *rrdpxml.Notification) ([]byte, error) {
	return MarshalNotificationLimits(n, rrdpxml.Limits{})
}

// MarshalNotificationLimits is MarshalNotification checking n under lim:
// rrdpxml.Limits.AllowHTTP lets it write http:// references.
func MarshalNotificationLimits(n *rrdpxml.Notification, lim rrdpxml.Limits) ([]byte, error) {
	if err := checkNotification(n, lim); err != nil {
		return nil, fmt.Errorf("irpki: cannot encode notification: %w", err)
	}
	m := &irpkipb.Notification{
		Serial:  n.Serial,
		Session: n.SessionID,
		Snapshot: &irpkipb.SnapshotReference{
			Uri:  n.Snapshot.URI,
			Hash: hex.EncodeToString(n.Snapshot.Hash[:]),
		},
		Version: Version,
		Kind:    irpkipb.FileKind_FILE_KIND_NOTIFICATION,
	}
	for _, d := range n.Deltas {
		m.Deltas = append(m.Deltas, &irpkipb.DeltaReference{
			Uri:    d.URI,
			Hash:   hex.EncodeToString(d.Hash[:]),
			Serial: d.Serial,
		})
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// UnmarshalNotification decodes and checks a notification.bin with the
// rules rrdpxml applies to notification.xml. A file without our version
// and kind fields (a writer of the paper's layout alone) is accepted.
func UnmarshalNotification(b []byte, lim rrdpxml.Limits) (*rrdpxml.Notification, error) {
	lim = lim.WithDefaults()
	if int64(len(b)) > lim.MaxFileSize {
		return nil, fmt.Errorf("irpki: notification of %d bytes: %w", len(b), ErrTooLarge)
	}
	var m irpkipb.Notification
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("irpki: cannot decode notification: %w", err)
	}
	if m.Version != 0 && m.Version != Version {
		return nil, fmt.Errorf("irpki: notification version %d: %w", m.Version, ErrVersion)
	}
	if k := m.Kind; k != irpkipb.FileKind_FILE_KIND_UNSPECIFIED && k != irpkipb.FileKind_FILE_KIND_NOTIFICATION {
		return nil, fmt.Errorf("irpki: notification says kind %v: %w", k, ErrKind)
	}
	if m.Snapshot == nil {
		return nil, fmt.Errorf("irpki: notification without snapshot: %w", ErrInvalid)
	}
	if len(m.Deltas) > lim.MaxDeltas {
		return nil, fmt.Errorf("irpki: notification with %d deltas, limit %d: %w", len(m.Deltas), lim.MaxDeltas, ErrTooLarge)
	}
	n := &rrdpxml.Notification{SessionID: m.Session, Serial: m.Serial}
	var err error
	n.Snapshot.URI = m.Snapshot.Uri
	if n.Snapshot.Hash, err = parseHexHash(m.Snapshot.Hash); err != nil {
		return nil, fmt.Errorf("irpki: snapshot reference %s: %w", m.Snapshot.Uri, err)
	}
	for _, d := range m.Deltas {
		r := rrdpxml.DeltaRef{Serial: d.Serial, URI: d.Uri}
		if r.Hash, err = parseHexHash(d.Hash); err != nil {
			return nil, fmt.Errorf("irpki: delta reference %s: %w", d.Uri, err)
		}
		n.Deltas = append(n.Deltas, r)
	}
	if err := checkNotification(n, lim); err != nil {
		return nil, fmt.Errorf("irpki: cannot decode notification: %w", err)
	}
	return n, nil
}

// parseHexHash accepts exactly 64 lowercase hex digits, as we write them.
func parseHexHash(s string) (h [32]byte, err error) {
	if len(s) != 64 {
		return h, fmt.Errorf("%w: hash of %d hex digits, want 64", ErrInvalid, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, fmt.Errorf("%w: hash %q is not lowercase hex", ErrInvalid, s)
		}
	}
	_, err = hex.Decode(h[:], []byte(s))
	return h, err
}

func checkNotification(n *rrdpxml.Notification, lim rrdpxml.Limits) error {
	lim = lim.WithDefaults()
	if !rrdpxml.ValidSessionID(n.SessionID) {
		return fmt.Errorf("%w: session %q is not a UUID", ErrInvalid, n.SessionID)
	}
	if n.Serial == 0 {
		return fmt.Errorf("%w: serial zero", ErrInvalid)
	}
	if err := lim.CheckFileURI(n.Snapshot.URI); err != nil {
		return fmt.Errorf("snapshot reference: %w", err)
	}
	seen := make(map[uint64]bool, len(n.Deltas))
	for _, d := range n.Deltas {
		if err := lim.CheckFileURI(d.URI); err != nil {
			return fmt.Errorf("delta reference %d: %w", d.Serial, err)
		}
		if d.Serial == 0 || d.Serial > n.Serial {
			return fmt.Errorf("%w: delta serial %d outside 1..%d", ErrInvalid, d.Serial, n.Serial)
		}
		if seen[d.Serial] {
			return fmt.Errorf("%w: delta serial %d listed twice", ErrInvalid, d.Serial)
		}
		seen[d.Serial] = true
	}
	return nil
}

// MapNotification returns the counterpart of notification n in format f:
// the same session and serial, the snapshot and every delta for which sums
// holds the SHA-256 of its file in format f, each referenced at base +
// FilePath. base is the URI of the directory that holds the notification,
// ending in '/'. Deltas without a file are left out; the order is n's.
func MapNotification(n *rrdpxml.Notification, base string, f Format, sums Sums) *rrdpxml.Notification {
	out := &rrdpxml.Notification{SessionID: n.SessionID, Serial: n.Serial}
	out.Snapshot = rrdpxml.SnapshotRef{
		URI:  base + FilePath(rrdpxml.KindSnapshot, f, n.SessionID, n.Serial, sums.Snapshot),
		Hash: sums.Snapshot,
	}
	for _, d := range n.Deltas {
		sum, ok := sums.Deltas[d.Serial]
		if !ok {
			continue
		}
		out.Deltas = append(out.Deltas, rrdpxml.DeltaRef{
			Serial: d.Serial,
			URI:    base + FilePath(rrdpxml.KindDelta, f, n.SessionID, d.Serial, sum),
			Hash:   sum,
		})
	}
	return out
}

// Sums holds the SHA-256 of the snapshot and delta files of one
// notification, deltas by serial.
type Sums struct {
	Snapshot [32]byte
	Deltas   map[uint64][32]byte
}
