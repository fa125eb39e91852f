package rpki

import (
	"errors"
	"fmt"
	"slices"
)

// resolveResources returns child with its inheriting families replaced by
// parent's (an inherited family the parent lacks is empty, as rpki-client and
// Krill have it), after checking that child's explicit resources lie within
// parent's (RFC 6487 section 7.2, RFC 3779). parent must not inherit.
func resolveResources(child, parent Resources) (Resources, error) {
	if parent.IP.InheritV4 || parent.IP.InheritV6 || parent.AS.Inherit {
		return Resources{}, errors.New("issuer resources still inherit")
	}
	pv4, pv6, err := parent.IP.Canonical()
	if err != nil {
		return Resources{}, fmt.Errorf("issuer resources: %w", err)
	}
	pas, err := parent.AS.Canonical()
	if err != nil {
		return Resources{}, fmt.Errorf("issuer resources: %w", err)
	}
	var out Resources
	for _, fam := range []struct {
		name    string
		inherit bool
		parent  []IPRange
		v4      bool
	}{{"IPv4", child.IP.InheritV4, pv4, true}, {"IPv6", child.IP.InheritV6, pv6, false}} {
		if fam.inherit { // of a family the issuer lacks: nothing, as RPs do
			out.IP.Ranges = append(out.IP.Ranges, fam.parent...)
			continue
		}
		for _, r := range child.IP.Ranges {
			if r.Min.Is4() != fam.v4 {
				continue
			}
			if !containsIP(fam.parent, r) {
				return Resources{}, fmt.Errorf("%w: %s range %s is not within the issuer's resources", ErrOverclaim, fam.name, r)
			}
			out.IP.Ranges = append(out.IP.Ranges, r)
		}
	}
	if child.AS.Inherit {
		out.AS.Ranges = pas
	}
	for _, r := range child.AS.Ranges {
		if !containsAS(pas, r) {
			return Resources{}, fmt.Errorf("%w: AS range %d-%d is not within the issuer's resources", ErrOverclaim, r.Min, r.Max)
		}
		out.AS.Ranges = append(out.AS.Ranges, r)
	}
	return out, nil
}

// containsIP reports whether r lies within the union of rs. rs need not be
// sorted or merged.
func containsIP(rs []IPRange, r IPRange) bool {
	same := slices.DeleteFunc(slices.Clone(rs), func(x IPRange) bool { return x.Min.Is4() != r.Min.Is4() })
	for _, x := range mergeIP(same) {
		if !r.Min.Less(x.Min) && !x.Max.Less(r.Max) {
			return true
		}
	}
	return false
}

// containsAS reports whether r lies within the union of rs.
func containsAS(rs []ASRange, r ASRange) bool {
	merged, err := ASResources{Ranges: rs}.Canonical()
	if err != nil {
		return false
	}
	for _, x := range merged {
		if x.Min <= r.Min && r.Max <= x.Max {
			return true
		}
	}
	return false
}
