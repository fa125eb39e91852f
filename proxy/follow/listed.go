package follow

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// listedDeltas fetches, after a snapshot, the deltas the origin lists up
// to the snapshot's serial (the contiguous run ending there, at most
// MaxDeltas), so that RPs at older serials of the session get deltas and
// not the snapshot. Each is checked against its hash in the notification
// and then, newest first, against the snapshot: walking back from the
// snapshot's objects, every publish must give the object the snapshot
// (or a later delta) holds and every withdraw must remove one it lacks,
// and the hash a delta names becomes the object's hash before it. The run
// is cut at the first delta that fails that check; a failed fetch drops
// the whole run. Failures are logged and counted but do not fail the sync. It records the deltas kept in st.held and
// returns their blobs.
func (f *Follower) listedDeltas(ctx context.Context, st *state, n *rrdpxml.Notification) ([]blob, error) {
	listed := make(map[uint64]rrdpxml.DeltaRef, len(n.Deltas))
	for _, d := range n.Deltas {
		listed[d.Serial] = d
	}
	var refs []rrdpxml.DeltaRef
	for s := n.Serial; s > 0 && len(refs) < f.cfg.MaxDeltas; s-- {
		d, ok := listed[s]
		if !ok {
			break
		}
		refs = append(refs, d)
	}
	slices.Reverse(refs) // oldest first
	if len(refs) == 0 {
		return nil, nil
	}
	bodies, err := f.fetchDeltas(ctx, refs)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		f.classify(err)
		f.log.Warn("listed deltas not usable; serving the snapshot alone", "err", err)
		return nil, nil
	}
	hashes := make(map[string][32]byte, len(st.objects))
	for u, o := range st.objects {
		hashes[u] = o.hash
	}
	first := len(refs)
	for i := len(refs) - 1; i >= 0; i-- {
		if err := unapply(bodies[i], st, refs[i].Serial, hashes, f.cfg.Limits); err != nil {
			f.classify(err)
			f.log.Warn("a listed delta does not lead to the snapshot; serving the later ones only", "err", err)
			break
		}
		first = i
	}
	xs, bs := st.sessions()
	var blobs []blob
	for i := first; i < len(refs); i++ {
		pair, err := f.pair(bodies[i], refs[i].Hash, st.format, rrdpxml.KindDelta, st.session, xs, bs, refs[i].Serial)
		if err != nil {
			f.classify(err)
			f.log.Warn("cannot transcode a listed delta; serving the snapshot alone", "err", err)
			clear(st.held)
			return nil, nil
		}
		blobs = append(blobs, pair...)
		st.held[refs[i].Serial] = heldDelta{upstream: refs[i].Hash, files: files(pair)}
	}
	return blobs, nil
}

// unapply checks delta b against hashes, the object hashes of the state
// right after it, and turns hashes into those of the state before it.
func unapply(b []byte, st *state, serial uint64, hashes map[string][32]byte, lim rrdpxml.Limits) error {
	seen := make(map[string]bool)
	undo := make(map[string]*[32]byte)
	err := walk(b, st.format, rrdpxml.KindDelta, st.session, serial, lim, func(e *element) error {
		if seen[e.URI] {
			return fmt.Errorf("delta %d: %s appears twice: %w", serial, e.URI, ErrMismatch)
		}
		seen[e.URI] = true
		after, exists := hashes[e.URI]
		switch {
		case e.Withdraw && exists:
			return fmt.Errorf("delta %d withdraws %s, which the next state holds: %w", serial, e.URI, ErrMismatch)
		case e.Withdraw && !e.HasHash:
			return fmt.Errorf("delta %d: withdraw of %s without hash: %w", serial, e.URI, ErrReplace)
		case !e.Withdraw && (!exists || after != sha256.Sum256(e.Content)):
			return fmt.Errorf("delta %d publishes %s, which the next state does not hold: %w", serial, e.URI, ErrMismatch)
		}
		if e.HasHash {
			h := e.Hash
			undo[e.URI] = &h
		} else {
			undo[e.URI] = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	for u, h := range undo {
		if h == nil {
			delete(hashes, u)
		} else {
			hashes[u] = *h
		}
	}
	return nil
}
