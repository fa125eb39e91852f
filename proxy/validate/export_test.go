package validate

// DeltaLoads returns how many states v read by applying deltas to the
// previous state rather than reading the snapshot.
func DeltaLoads(v *Validator) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n.deltaLoads
}
