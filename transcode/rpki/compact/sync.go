package compact

import (
	"errors"
	"fmt"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// Fetcher fetches a file the notification names, by its URI as written
// there. It must bound the time and size itself.
type Fetcher func(uri string) ([]byte, error)

// Trust is what a client trusts: the proxy's keys, and optionally the
// trust anchors.
type Trust struct {
	// Keys are the proxy's public keys (ParseKeys).
	Keys Keys
	// TAs, if not empty, are the SubjectPublicKeyInfos of the trust
	// anchors to accept (the keys of TALs, RFC 8630): a TA certificate
	// with another key fails. Empty: any self-signed, current TA
	// certificate the proxy publishes is accepted.
	TAs [][]byte
	// RequireCertificates refuses groups that carry a CA record in place
	// of their CA certificate (Builder.OmitCertificates): a client that
	// wants every CA checked end to end from its trust anchor sets it.
	RequireCertificates bool
}

// Sync brings prev (nil: nothing yet) to the state of the compact
// notification data, verified with trust at now: the notification's
// signature, then its deltas from prev.Serial+1 when it lists them all and
// the session is prev's, else its snapshot, then the whole state (Verify).
// A notification of prev's session with a lower serial is a replay
// (ErrReplay). On any failure it returns the error and prev stays the
// state to keep. Sync is for one self-contained publication; a client
// that follows several, whose chains cross them, uses SyncAll.
func Sync(prev *State, data []byte, fetch Fetcher, trust Trust, now time.Time) (*State, *rpki.Result, error) {
	next, from, err := Advance(prev, data, fetch, trust)
	if err != nil {
		return nil, nil, err
	}
	res, err := next.Verify(now, trust, prev)
	if err != nil {
		return nil, nil, fileError(from, err)
	}
	return next, res, nil
}

// Advance is the first half of Sync: it checks the notification data
// (its signature by a key of trust, no replay of prev's session) and
// returns the state it names, from prev and the deltas or from the
// snapshot, whose files are checked against their hashes but whose groups
// are not verified yet (Verify, SyncAll). from names what the state came
// from (the snapshot's URI, "deltas N to M", or "state kept"), for errors
// found later. A notification of prev's serial returns prev itself.
func Advance(prev *State, data []byte, fetch Fetcher, trust Trust) (next *State, from string, err error) {
	nt, err := ParseNotification(data, trust.Keys)
	if err != nil {
		return nil, "", err
	}
	from = "state kept"
	if prev != nil && prev.Session == nt.Session {
		switch {
		case nt.Serial < prev.Serial:
			return nil, "", fmt.Errorf("%w: notification of serial %d, below serial %d synced before", ErrReplay, nt.Serial, prev.Serial)
		case nt.Serial == prev.Serial:
			next = prev
		default:
			next, err = applyDeltas(prev, nt.Serial, deltaURIs(nt), fetch)
			if err != nil {
				return nil, "", err
			}
			from = fmt.Sprintf("deltas %d to %d", prev.Serial+1, nt.Serial)
		}
	}
	if next == nil {
		b, err := fetch(nt.Snapshot.Uri)
		if err != nil {
			return nil, "", &Error{File: nt.Snapshot.Uri, Err: err}
		}
		next, err = ParseSnapshot(b, nt.Snapshot.Hash, nt.Session, nt.Serial)
		if err != nil {
			return nil, "", fileError(nt.Snapshot.Uri, err)
		}
		from = nt.Snapshot.Uri
	}
	return next, from, nil
}

type deltaRef struct{ uri, hash string }

func deltaURIs(nt *irpkipb.Notification) map[uint64]deltaRef {
	out := map[uint64]deltaRef{}
	for _, d := range nt.GetDeltas() {
		out[d.Serial] = deltaRef{d.Uri, d.Hash}
	}
	return out
}

// applyDeltas applies the deltas after prev up to serial, or returns nil,
// nil when the notification lacks one of them (then the snapshot is used).
func applyDeltas(prev *State, serial uint64, refs map[uint64]deltaRef, fetch Fetcher) (*State, error) {
	for s := prev.Serial + 1; s <= serial; s++ {
		if _, ok := refs[s]; !ok {
			return nil, nil
		}
	}
	st := prev
	for s := prev.Serial + 1; s <= serial; s++ {
		r := refs[s]
		b, err := fetch(r.uri)
		if err != nil {
			return nil, &Error{File: r.uri, Err: err}
		}
		if st, err = st.ApplyDelta(b, r.hash); err != nil {
			return nil, fileError(r.uri, err)
		}
	}
	return st, nil
}

// fileError names the file in err.
func fileError(uri string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.File = uri
		return &c
	}
	return &Error{File: uri, Err: err}
}
