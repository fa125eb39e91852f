package rpki

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ParseASPA parses the DER eContent of an ASPA in either profile that
// ASPA.Marshal writes: version 0 (version absent, providers as SEQUENCE
// {providerASID, afiLimit OPTIONAL}) or version 1 ([0] 1, providers as
// plain AS numbers). Providers must be non-empty, in ascending order,
// unique, and not the customer; an AFI limit is 0001 or 0002.
func ParseASPA(der []byte) (ASPA, error) {
	a, err := parseASPA(der)
	if err != nil {
		return ASPA{}, fmt.Errorf("parse ASPA: %w", err)
	}
	return a, nil
}

func parseASPA(der []byte) (ASPA, error) {
	var a ASPA
	in := cryptobyte.String(der)
	var seq, provs cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return a, errors.New("malformed ASProviderAttestation")
	}
	if seq.PeekASN1Tag(tagExplicit0) {
		var wrap cryptobyte.String
		var v int64
		if !seq.ReadASN1(&wrap, tagExplicit0) || !wrap.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || !wrap.Empty() {
			return a, errors.New("malformed version")
		}
		if v != 1 {
			return a, fmt.Errorf("version %d, want 1 (or absent for 0)", v)
		}
		a.Version = 1
	}
	if !readASID(&seq, &a.CustomerASID) {
		return a, errors.New("customerASID missing or out of range")
	}
	if !seq.ReadASN1(&provs, cbasn1.SEQUENCE) || !seq.Empty() || provs.Empty() {
		return a, errors.New("providers missing, empty or followed by trailing data")
	}
	for i := 0; !provs.Empty(); i++ {
		var p ASPAProvider
		if a.Version == 1 {
			if !readASID(&provs, &p.ASID) {
				return a, fmt.Errorf("provider %d: malformed ASID", i)
			}
		} else {
			var ps cryptobyte.String
			if !provs.ReadASN1(&ps, cbasn1.SEQUENCE) || !readASID(&ps, &p.ASID) {
				return a, fmt.Errorf("provider %d: malformed ProviderAS", i)
			}
			if !ps.Empty() {
				var afi cryptobyte.String
				if !ps.ReadASN1(&afi, cbasn1.OCTET_STRING) || !ps.Empty() || len(afi) != 2 || afi[0] != 0 || afi[1] < 1 || afi[1] > 2 {
					return a, fmt.Errorf("provider %d: malformed afiLimit", i)
				}
				p.AFI = afi[1]
			}
		}
		switch {
		case p.ASID == a.CustomerASID:
			return a, fmt.Errorf("provider %d: the customer AS%d is listed as provider", i, p.ASID)
		case i > 0 && a.Providers[i-1].ASID >= p.ASID:
			return a, fmt.Errorf("provider %d: AS%d out of order or duplicate", i, p.ASID)
		}
		a.Providers = append(a.Providers, p)
	}
	return a, nil
}
