package rpki

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ParseROA parses the DER eContent of a ROA (RFC 9582): the version
// absent (an explicit default is not DER), an asID in 0..2^32-1, one or two
// ROAIPAddressFamily of distinct families with a two-octet addressFamily,
// at least one address each, and every maxLength at least the prefix length
// and at most the family's address length. Prefixes keep their encoded
// order; MaxLength is always filled in.
func ParseROA(der []byte) (ROA, error) {
	r, err := parseROA(der)
	if err != nil {
		return ROA{}, fmt.Errorf("parse ROA: %w", err)
	}
	return r, nil
}

func parseROA(der []byte) (ROA, error) {
	var r ROA
	in := cryptobyte.String(der)
	var roa, blocks cryptobyte.String
	if !in.ReadASN1(&roa, cbasn1.SEQUENCE) || !in.Empty() {
		return r, errors.New("malformed RouteOriginAttestation")
	}
	if roa.PeekASN1Tag(tagExplicit0) || roa.PeekASN1Tag(tagImplicit0) {
		return r, errors.New("version present: only the default version 0 exists, and DER omits it")
	}
	if !readASID(&roa, &r.ASID) {
		return r, errors.New("asID missing or out of range")
	}
	if !roa.ReadASN1(&blocks, cbasn1.SEQUENCE) || !roa.Empty() || blocks.Empty() {
		return r, errors.New("ipAddrBlocks missing, empty or followed by trailing data")
	}
	var seen [3]bool
	for i := 0; !blocks.Empty(); i++ {
		var fam, afi, addrs cryptobyte.String
		if !blocks.ReadASN1(&fam, cbasn1.SEQUENCE) || !fam.ReadASN1(&afi, cbasn1.OCTET_STRING) ||
			!fam.ReadASN1(&addrs, cbasn1.SEQUENCE) || !fam.Empty() {
			return r, fmt.Errorf("family %d: malformed ROAIPAddressFamily", i)
		}
		if len(afi) != 2 || afi[0] != 0 || (afi[1] != 1 && afi[1] != 2) {
			return r, fmt.Errorf("family %d: addressFamily %x, want 0001 or 0002", i, []byte(afi))
		}
		if seen[afi[1]] {
			return r, fmt.Errorf("family %d: addressFamily %x appears twice", i, []byte(afi))
		}
		seen[afi[1]] = true
		size := 4
		if afi[1] == 2 {
			size = 16
		}
		if addrs.Empty() {
			return r, fmt.Errorf("family %d: no addresses", i)
		}
		for j := 0; !addrs.Empty(); j++ {
			var a cryptobyte.String
			if !addrs.ReadASN1(&a, cbasn1.SEQUENCE) {
				return r, fmt.Errorf("family %d address %d: malformed ROAIPAddress", i, j)
			}
			bits, n, err := readBits(&a, size)
			if err != nil {
				return r, fmt.Errorf("family %d address %d: %w", i, j, err)
			}
			addr := fillAddr(bits, n, size, 0)
			p := ROAPrefix{Prefix: netip.PrefixFrom(addr, n), MaxLength: n}
			if !a.Empty() {
				var ml int64
				if !a.ReadASN1Int64WithTag(&ml, cbasn1.INTEGER) || !a.Empty() {
					return r, fmt.Errorf("family %d address %d: malformed maxLength", i, j)
				}
				if ml < int64(n) || ml > int64(size*8) {
					return r, fmt.Errorf("family %d address %d: maxLength %d out of range for %s", i, j, ml, p.Prefix)
				}
				p.MaxLength = int(ml)
			}
			r.Prefixes = append(r.Prefixes, p)
		}
	}
	return r, nil
}
