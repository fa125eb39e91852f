package validate

// DeltaLoads returns how many states v read by applying deltas to the
// previous state rather than reading the snapshot.
func DeltaLoads(v *Validator) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n.deltaLoads
}

// StateOf returns the objects of the state v holds for the repository
// key, by URI, and how many objects its load read as views and copied, and its stale
// bytes counted against the parts of a composite snapshot whose sums are
// parts (nil: none).
func StateOf(v *Validator, key string, parts [][32]byte) (objs map[string][]byte, views, copies int, stale int64) {
	v.runMu.Lock()
	defer v.runMu.Unlock()
	rs := v.repos[key]
	if rs == nil {
		return nil, 0, 0, 0
	}
	objs = map[string][]byte{}
	for dir, g := range rs.groups {
		for name, o := range g.objs {
			objs[dir+name] = o.b
		}
	}
	sums := map[[32]byte]bool{}
	for _, p := range parts {
		sums[p] = true
	}
	return objs, rs.views, rs.copies, rs.staleBytes(sums)
}

// SetStaleLimit makes n the most stale bytes (see view.go) a state of v
// read from deltas may hold.
func SetStaleLimit(v *Validator, n int64) {
	v.runMu.Lock()
	v.staleLimit = func(int64) int64 { return n }
	v.runMu.Unlock()
}

// OpenErrors returns how many states v could not read.
func OpenErrors(v *Validator) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n.openErrors
}
