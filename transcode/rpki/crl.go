package rpki

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRLSpec describes a CRL (RFC 6487 section 5).
type CRLSpec struct {
	// Number is the positive, increasing CRL number.
	Number *big.Int
	// ThisUpdate and NextUpdate are truncated to the second.
	ThisUpdate, NextUpdate time.Time
	// Revoked lists the revoked certificates in any order; they are
	// encoded sorted by serial.
	Revoked []Revoked
}

// Revoked is one revoked certificate.
type Revoked struct {
	Serial *big.Int
	Time   time.Time
}

// IssueCRL returns a version 2 CRL in DER signed by issuer, with the AKI and
// CRL number extensions and no entry extensions.
func IssueCRL(spec CRLSpec, issuer Issuer) ([]byte, error) {
	if err := checkSerial("CRL number", spec.Number); err != nil {
		return nil, fmt.Errorf("issue CRL: %w", err)
	}
	if !spec.ThisUpdate.Before(spec.NextUpdate) {
		return nil, fmt.Errorf("issue CRL %s: thisUpdate %s is not before nextUpdate %s", spec.Number, spec.ThisUpdate, spec.NextUpdate)
	}
	if len(issuer.Name) == 0 || len(issuer.KeyID) == 0 || issuer.Key == nil {
		return nil, fmt.Errorf("issue CRL %s: incomplete issuer", spec.Number)
	}
	revoked := slices.Clone(spec.Revoked)
	for _, r := range revoked {
		if err := checkSerial("revoked serial", r.Serial); err != nil {
			return nil, fmt.Errorf("issue CRL %s: %w", spec.Number, err)
		}
	}
	slices.SortFunc(revoked, func(a, b Revoked) int { return cmp.Or(a.Serial.Cmp(b.Serial), a.Time.Compare(b.Time)) })
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1) // v2
		addAlgorithm(b, oidSHA256WithRSA, true)
		b.AddBytes(issuer.Name)
		addTime(b, spec.ThisUpdate)
		addTime(b, spec.NextUpdate)
		if len(revoked) > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, r := range revoked {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1BigInt(r.Serial)
						addTime(b, r.Time)
					})
				}
			})
		}
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidExtAuthorityKeyID, false, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(issuer.KeyID) })
					})
				})
				addExtension(b, oidExtCRLNumber, false, func(b *cryptobyte.Builder) { b.AddASN1BigInt(spec.Number) })
			})
		})
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("issue CRL %s: encode TBSCertList: %w", spec.Number, err)
	}
	der, err := signTBS(tbs, issuer.Key)
	if err != nil {
		return nil, fmt.Errorf("issue CRL %s: %w", spec.Number, err)
	}
	return der, nil
}
