package rpki

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ROA is the content of a Route Origin Authorization (RFC 9582): the
// RouteOriginAttestation, eContentType OIDContentROA.
type ROA struct {
	ASID     uint32
	Prefixes []ROAPrefix
}

// ROAPrefix is one authorized prefix. MaxLength 0 means the prefix length.
type ROAPrefix struct {
	Prefix    netip.Prefix
	MaxLength int
}

// Canonical returns the prefixes in the canonical order of RFC 9582 section
// 4.3.3: IPv4 before IPv6, then by address, prefix length and maxLength,
// with exact duplicates removed and MaxLength filled in.
func (r ROA) Canonical() ([]ROAPrefix, error) {
	if len(r.Prefixes) == 0 {
		return nil, fmt.Errorf("ROA for AS%d has no prefixes", r.ASID)
	}
	ps := make([]ROAPrefix, 0, len(r.Prefixes))
	for _, p := range r.Prefixes {
		if !p.Prefix.IsValid() || p.Prefix.Addr().Zone() != "" || p.Prefix.Masked() != p.Prefix {
			return nil, fmt.Errorf("ROA for AS%d: invalid or unmasked prefix %s", r.ASID, p.Prefix)
		}
		if p.MaxLength == 0 {
			p.MaxLength = p.Prefix.Bits()
		}
		if p.MaxLength < p.Prefix.Bits() || p.MaxLength > p.Prefix.Addr().BitLen() {
			return nil, fmt.Errorf("ROA for AS%d: maxLength %d out of range for %s", r.ASID, p.MaxLength, p.Prefix)
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, compareROAPrefix)
	return slices.CompactFunc(ps, func(a, b ROAPrefix) bool { return compareROAPrefix(a, b) == 0 }), nil
}

func compareROAPrefix(a, b ROAPrefix) int {
	return cmp.Or(
		a.Prefix.Addr().Compare(b.Prefix.Addr()), // IPv4 sorts before IPv6
		cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
		cmp.Compare(a.MaxLength, b.MaxLength),
	)
}

// Resources returns the IP resources an EE certificate for r must hold:
// exactly its prefixes.
func (r ROA) Resources() Resources {
	var res Resources
	for _, p := range r.Prefixes {
		res.IP.Ranges = append(res.IP.Ranges, PrefixRange(p.Prefix))
	}
	return res
}

// Marshal returns the DER RouteOriginAttestation in canonical form: version
// omitted (0), maxLength omitted where it equals the prefix length.
func (r ROA) Marshal() ([]byte, error) {
	ps, err := r.Canonical()
	if err != nil {
		return nil, fmt.Errorf("encode ROA: %w", err)
	}
	split := len(ps)
	for i, p := range ps {
		if p.Prefix.Addr().Is6() {
			split = i
			break
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Uint64(uint64(r.ASID))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addROAFamily(b, 1, ps[:split])
			addROAFamily(b, 2, ps[split:])
		})
	})
	return b.Bytes()
}

func addROAFamily(b *cryptobyte.Builder, afi byte, ps []ROAPrefix) {
	if len(ps) == 0 {
		return
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString([]byte{0, afi})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, p := range ps {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addBits(b, p.Prefix.Addr().AsSlice(), p.Prefix.Bits())
					if p.MaxLength != p.Prefix.Bits() {
						b.AddASN1Int64(int64(p.MaxLength))
					}
				})
			}
		})
	})
}
