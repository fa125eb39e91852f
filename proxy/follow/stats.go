package follow

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// Stats counts what a follower did.
type Stats struct {
	Syncs         uint64 // notification fetches
	NotModified   uint64 // of which answered 304 or unchanged
	Snapshots     uint64 // states taken from a snapshot
	Deltas        uint64 // deltas applied
	DeltaFailures uint64 // delta runs abandoned for the snapshot
	Desyncs       uint64 // a known serial whose delta hash changed
	Backwards     uint64 // a serial lower than ours in the same session
	Errors        uint64 // syncs that failed; the last good state stays
	Resets        uint64 // downstream session resets (after Desyncs, Backwards)
	StartFailures uint64 // a Start head whose blobs could not be read back
	// SnapshotMismatches counts, in transparent mode, origin snapshots
	// that differ from the state their deltas led to (the snapshot's
	// state was taken).
	SnapshotMismatches uint64
	// FragmentsBuilt and FragmentsReused count the chunks of composite
	// snapshots (Config.FragmentMin) encoded afresh and taken over from
	// the previous serial.
	FragmentsBuilt, FragmentsReused uint64
	// OriginSegmentsBuilt and OriginSegmentsReused count, in transparent
	// mode, the segments of the origin's composite XML snapshots stored
	// afresh and taken over from the previous serial (origin.go).
	OriginSegmentsBuilt, OriginSegmentsReused uint64

	// Failures by kind: every failed fetch or verification, whether the
	// sync then failed or fell back to the snapshot.
	Unreachable    uint64 // connection refused, DNS, TLS
	Timeouts       uint64 // deadlines and the minimum transfer rate
	HTTPStatus     uint64 // an unexpected HTTP status (5xx, 404)
	TooLarge       uint64 // over a size cap, gzip bombs included
	Truncated      uint64 // a body that ended early, broken gzip
	Redirects      uint64 // a redirect refused (another origin, loops)
	HashMismatches uint64 // a file whose hash differs from the notification's
	Invalid        uint64 // broken XML or .bin, a wrong session or serial, a gap, a bad replace
	CrossOrigin    uint64 // a file named on another origin (RFC 9674), or outside its directory (transparent)
	StoreFailures  uint64 // the store refused a blob or a head
	Held           uint64 // the store held a head back (ErrHeld): not a failure

	Session     string // the upstream's
	Serial      uint64
	LastSuccess time.Time
	LastError   time.Time
	LastErr     string
	// Holding is the state the Store holds back now (ErrHeld); zero
	// while none is. A fleet shares it, so that any node can name the
	// serial an operator releases (proxy/fleet).
	Holding Holding
}

// Holding is a state the Store holds back: a valid serial not published.
type Holding struct {
	Session string
	Serial  uint64
	// Since is when the Store first held it; Err is the Store's word.
	Since time.Time
	Err   string
}

// errStore marks a failure of the Store, not of the origin.
var errStore = errors.New("store failure")

// fail counts err by kind and returns it.
func (f *Follower) fail(err error) error {
	f.classify(err)
	return err
}

// classify counts err in the Stats field of its kind. Cancellation of
// the sync's own context is not a failure of the origin.
func (f *Follower) classify(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	var ue *upstream.Error
	f.count(func(s *Stats) {
		switch {
		case errors.Is(err, ErrHeld):
			s.Held++
		case errors.Is(err, errStore):
			s.StoreFailures++
		case errors.Is(err, upstream.ErrTimeout), errors.Is(err, upstream.ErrTooSlow), errors.Is(err, context.DeadlineExceeded):
			s.Timeouts++
		case errors.Is(err, upstream.ErrTooLarge):
			s.TooLarge++
		case errors.Is(err, upstream.ErrStatus):
			s.HTTPStatus++
		case errors.Is(err, upstream.ErrRedirect):
			s.Redirects++
		case errors.Is(err, upstream.ErrGzip), errors.Is(err, io.ErrUnexpectedEOF):
			s.Truncated++
		case errors.Is(err, ErrHash):
			s.HashMismatches++
		case errors.Is(err, ErrCrossOrigin), errors.Is(err, ErrOutside):
			s.CrossOrigin++
		case errors.As(err, &ue) && ue.Op == "get":
			s.Unreachable++
		case errors.As(err, &ue):
			s.Truncated++ // the body broke off
		default:
			s.Invalid++
		}
	})
}
