package conf

import (
	"reflect"
	"slices"
)

// Diff says what a reload changes: the repositories added, removed and
// changed (by name, in the order of the files), and whether a setting
// outside the repositories changed, which the daemon may apply only by a
// restart (listen addresses, the cache and Redis tiers).
type Diff struct {
	Added, Removed, Changed []string
	Server, Cache           bool
}

// Compare returns what changes from old to new.
func Compare(old, new *Config) Diff {
	var d Diff
	before := make(map[string]*Repository, len(old.Repositories))
	for i := range old.Repositories {
		before[old.Repositories[i].Name] = &old.Repositories[i]
	}
	seen := make(map[string]bool, len(new.Repositories))
	for i := range new.Repositories {
		r := &new.Repositories[i]
		seen[r.Name] = true
		o, ok := before[r.Name]
		switch {
		case !ok:
			d.Added = append(d.Added, r.Name)
		case !reflect.DeepEqual(o, r) || old.BaseURI(o) != new.BaseURI(r):
			d.Changed = append(d.Changed, r.Name)
		}
	}
	for i := range old.Repositories {
		if n := old.Repositories[i].Name; !seen[n] {
			d.Removed = append(d.Removed, n)
		}
	}
	d.Server = !equalServer(old.Server, new.Server)
	d.Cache = !reflect.DeepEqual(old.Cache, new.Cache)
	return d
}

// equalServer compares two server tables; the certificates compare by
// their bytes.
func equalServer(a, b Server) bool {
	ca, cb := a.Certificate, b.Certificate
	a.Certificate, b.Certificate = nil, nil
	if !reflect.DeepEqual(a, b) {
		return false
	}
	if (ca == nil) != (cb == nil) {
		return false
	}
	return ca == nil || slices.EqualFunc(ca.Certificate, cb.Certificate, slices.Equal[[]byte])
}

// Empty reports whether nothing changes.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 && !d.Server && !d.Cache
}
