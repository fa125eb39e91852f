package rrdpxml

// DeltasFrom returns the deltas a relying party at session and serial
// applies to reach n, in serial order (RFC 8182, section 3.4.1): those
// from serial+1 to n.Serial, when n is of the same session, not behind it,
// and lists every one of them. ok is false when it must take the snapshot
// instead. A party already at n.Serial gets no delta and ok.
func (n *Notification) DeltasFrom(session string, serial uint64) (deltas []DeltaRef, ok bool) {
	if session != n.SessionID || serial > n.Serial {
		return nil, false
	}
	listed := make(map[uint64]DeltaRef, len(n.Deltas))
	for _, d := range n.Deltas {
		listed[d.Serial] = d
	}
	for s := serial + 1; s <= n.Serial; s++ {
		d, ok := listed[s]
		if !ok {
			return nil, false
		}
		deltas = append(deltas, d)
	}
	return deltas, true
}
