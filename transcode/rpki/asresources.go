package rpki

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ASRange is an inclusive range of AS numbers; a single AS has Min == Max.
type ASRange struct {
	Min, Max uint32
}

// ASResources is the content of the sbgp-autonomousSysNum extension (asnum
// only: RFC 6487 forbids rdi). Ranges may come in any order and overlap:
// encoding sorts and merges them.
type ASResources struct {
	Inherit bool
	Ranges  []ASRange
}

// Empty reports whether r neither inherits nor lists AS numbers.
func (r ASResources) Empty() bool { return !r.Inherit && len(r.Ranges) == 0 }

// Canonical returns the ranges sorted and merged (adjacent ranges joined).
func (r ASResources) Canonical() ([]ASRange, error) {
	if r.Inherit && len(r.Ranges) > 0 {
		return nil, errors.New("AS resources both inherit and list ranges")
	}
	if len(r.Ranges) == 0 {
		return nil, nil
	}
	rs := slices.Clone(r.Ranges)
	for _, x := range rs {
		if x.Max < x.Min {
			return nil, fmt.Errorf("AS range %d-%d has min above max", x.Min, x.Max)
		}
	}
	slices.SortFunc(rs, func(a, b ASRange) int { return cmp.Or(cmp.Compare(a.Min, b.Min), cmp.Compare(a.Max, b.Max)) })
	out := rs[:1]
	for _, x := range rs[1:] {
		last := &out[len(out)-1]
		if uint64(x.Min) <= uint64(last.Max)+1 {
			last.Max = max(last.Max, x.Max)
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

// Marshal returns the DER ASIdentifiers, the value of the
// sbgp-autonomousSysNum extension, in canonical form.
func (r ASResources) Marshal() ([]byte, error) {
	rs, err := r.Canonical()
	if err != nil {
		return nil, fmt.Errorf("encode AS resources: %w", err)
	}
	if r.Empty() {
		return nil, errors.New("encode AS resources: no AS numbers")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			if r.Inherit {
				b.AddASN1NULL()
				return
			}
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, x := range rs {
					if x.Min == x.Max {
						b.AddASN1Uint64(uint64(x.Min))
						continue
					}
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Uint64(uint64(x.Min))
						b.AddASN1Uint64(uint64(x.Max))
					})
				}
			})
		})
	})
	return b.Bytes()
}

// ParseASResources decodes the DER value of an sbgp-autonomousSysNum
// extension under the RFC 6487 profile (asnum present, no rdi). Ranges are
// returned in encoded order.
func ParseASResources(der []byte) (ASResources, error) {
	var r ASResources
	in := cryptobyte.String(der)
	var ids, choice cryptobyte.String
	if !in.ReadASN1(&ids, cbasn1.SEQUENCE) || !in.Empty() {
		return r, errors.New("parse AS resources: malformed ASIdentifiers")
	}
	if !ids.ReadASN1(&choice, tagExplicit0) {
		return r, errors.New("parse AS resources: missing asnum")
	}
	if !ids.Empty() {
		return r, errors.New("parse AS resources: rdi or trailing data present")
	}
	if choice.PeekASN1Tag(cbasn1.NULL) {
		if !choice.ReadASN1(new(cryptobyte.String), cbasn1.NULL) || !choice.Empty() {
			return r, errors.New("parse AS resources: malformed inherit")
		}
		r.Inherit = true
		return r, nil
	}
	var items cryptobyte.String
	if !choice.ReadASN1(&items, cbasn1.SEQUENCE) || !choice.Empty() {
		return r, errors.New("parse AS resources: malformed asIdsOrRanges")
	}
	for i := 0; !items.Empty(); i++ {
		var x ASRange
		ok := true
		if items.PeekASN1Tag(cbasn1.SEQUENCE) {
			var rng cryptobyte.String
			ok = items.ReadASN1(&rng, cbasn1.SEQUENCE) && readASID(&rng, &x.Min) && readASID(&rng, &x.Max) && rng.Empty() && x.Min <= x.Max
		} else {
			ok = readASID(&items, &x.Min)
			x.Max = x.Min
		}
		if !ok {
			return r, fmt.Errorf("parse AS resources: item %d: malformed ASIdOrRange", i)
		}
		r.Ranges = append(r.Ranges, x)
	}
	return r, nil
}

// readASID reads an INTEGER in 0..2^32-1.
func readASID(s *cryptobyte.String, out *uint32) bool {
	var v uint64
	if !s.ReadASN1Integer(&v) || v > math.MaxUint32 {
		return false
	}
	*out = uint32(v)
	return true
}
