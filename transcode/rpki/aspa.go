package rpki

import (
	"cmp"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ASPA is the content of an Autonomous System Provider Authorization,
// eContentType OIDContentASPA.
//
// Two profiles exist. Version 0 is draft-ietf-sidrops-aspa-profile up to
// -15, the one rpki-client 8.2 (Debian bookworm) implements: version
// omitted, providers as SEQUENCE { providerASID, afiLimit OPTIONAL }.
// Version 1 is the later profile (the current drafts, implemented by later
// rpki-client releases): version [0] 1, providers as a plain SEQUENCE OF
// ASID, no AFI limit.
// fort 1.5.4 does not process ASPA at all.
type ASPA struct {
	Version      int
	CustomerASID uint32
	Providers    []ASPAProvider
}

// ASPAProvider is one provider AS; AFI limits it to IPv4 (1) or IPv6 (2)
// in version 0, 0 meaning both. Version 1 has no AFI limit.
type ASPAProvider struct {
	ASID uint32
	AFI  uint8
}

// Resources returns the resources an EE certificate for a must hold: the
// customer AS.
func (a ASPA) Resources() Resources {
	return Resources{AS: ASResources{Ranges: []ASRange{{a.CustomerASID, a.CustomerASID}}}}
}

// Marshal returns the DER ASProviderAttestation, providers sorted by AS.
func (a ASPA) Marshal() ([]byte, error) {
	if a.Version != 0 && a.Version != 1 {
		return nil, fmt.Errorf("encode ASPA for AS%d: unsupported version %d", a.CustomerASID, a.Version)
	}
	if len(a.Providers) == 0 {
		return nil, fmt.Errorf("encode ASPA for AS%d: no providers", a.CustomerASID)
	}
	ps := slices.Clone(a.Providers)
	slices.SortFunc(ps, func(x, y ASPAProvider) int { return cmp.Compare(x.ASID, y.ASID) })
	for i, p := range ps {
		switch {
		case p.ASID == a.CustomerASID:
			return nil, fmt.Errorf("encode ASPA for AS%d: customer listed as provider", a.CustomerASID)
		case i > 0 && ps[i-1].ASID == p.ASID:
			return nil, fmt.Errorf("encode ASPA for AS%d: duplicate provider AS%d", a.CustomerASID, p.ASID)
		case p.AFI > 2 || (a.Version == 1 && p.AFI != 0):
			return nil, fmt.Errorf("encode ASPA for AS%d: invalid AFI limit %d for AS%d", a.CustomerASID, p.AFI, p.ASID)
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if a.Version == 1 {
			b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { b.AddASN1Int64(1) })
		}
		b.AddASN1Uint64(uint64(a.CustomerASID))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, p := range ps {
				if a.Version == 1 {
					b.AddASN1Uint64(uint64(p.ASID))
					continue
				}
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Uint64(uint64(p.ASID))
					if p.AFI != 0 {
						b.AddASN1OctetString([]byte{0, p.AFI})
					}
				})
			}
		})
	})
	return b.Bytes()
}
