package rpki

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRL is a parsed CRL whose RFC 6487 section 5 profile has been checked by
// ParseCRL.
type CRL struct {
	Raw       []byte
	RawTBS    []byte // TBSCertList, what the signature covers
	Signature []byte

	Issuer                 []byte // DER Name
	AKI                    []byte
	Number                 *big.Int
	ThisUpdate, NextUpdate time.Time
	// Revoked lists the entries in encoded order.
	Revoked []Revoked
}

// ParseCRL parses a CRL in DER and checks its profile: version 2,
// sha256WithRSA in both places, an RFC 6487 issuer name, thisUpdate before
// nextUpdate, entries with positive serials and no entry extensions, and
// exactly the AKI and CRL number extensions, not critical. The CRL refers
// to der, which must not change afterwards.
func ParseCRL(der []byte) (*CRL, error) {
	l, err := parseCRL(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	return l, nil
}

func parseCRL(der []byte) (*CRL, error) {
	l := &CRL{Raw: der}
	s, err := readSigned(der, "CertificateList", "TBSCertList")
	if err != nil {
		return nil, err
	}
	l.RawTBS, l.Signature = s.rawTBS, s.sig
	tbs := s.tbs
	var v int64
	if !tbs.PeekASN1Tag(cbasn1.INTEGER) || !tbs.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) {
		return nil, errors.New("version missing or malformed (want v2)")
	}
	if v != 1 {
		return nil, fmt.Errorf("version %d, want 1 (v2)", v)
	}
	if err := s.checkInnerAlg(&tbs, "5.1.1.2"); err != nil {
		return nil, err
	}
	var issuer cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuer")
	}
	if _, err := checkName(issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	l.Issuer = issuer
	if l.ThisUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("thisUpdate: %w", err)
	}
	if l.NextUpdate, err = readTime(&tbs); err != nil {
		return nil, fmt.Errorf("nextUpdate: %w", err)
	}
	if !l.ThisUpdate.Before(l.NextUpdate) {
		return nil, fmt.Errorf("thisUpdate %s is not before nextUpdate %s", l.ThisUpdate, l.NextUpdate)
	}
	if tbs.PeekASN1Tag(cbasn1.SEQUENCE) {
		var entries cryptobyte.String
		tbs.ReadASN1(&entries, cbasn1.SEQUENCE)
		for i := 0; !entries.Empty(); i++ {
			var e cryptobyte.String
			r := Revoked{Serial: new(big.Int)}
			if !entries.ReadASN1(&e, cbasn1.SEQUENCE) || !e.ReadASN1Integer(r.Serial) {
				return nil, fmt.Errorf("entry %d: malformed", i)
			}
			if err := checkSerial("serial", r.Serial); err != nil {
				return nil, fmt.Errorf("entry %d: %w", i, err)
			}
			if r.Time, err = readTime(&e); err != nil {
				return nil, fmt.Errorf("entry %d: revocationDate: %w", i, err)
			}
			if !e.Empty() {
				return nil, fmt.Errorf("entry %d: entry extensions are not allowed", i)
			}
			l.Revoked = append(l.Revoked, r)
		}
	}
	var extsWrap, exts cryptobyte.String
	if !tbs.ReadASN1(&extsWrap, tagExplicit0) || !extsWrap.ReadASN1(&exts, cbasn1.SEQUENCE) || !extsWrap.Empty() || !tbs.Empty() {
		return nil, errors.New("extensions missing or malformed")
	}
	for !exts.Empty() {
		var ext, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return nil, errors.New("malformed extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
			return nil, fmt.Errorf("extension %s: must not be critical", extName(oid))
		}
		if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return nil, fmt.Errorf("extension %s: malformed", extName(oid))
		}
		switch {
		case oid.Equal(oidExtAuthorityKeyID):
			if l.AKI != nil {
				return nil, errors.New("extension AKI appears twice")
			}
			var c Cert
			if err := c.parseAKI(value, false); err != nil {
				return nil, fmt.Errorf("extension AKI: %w", err)
			}
			l.AKI = c.AKI
		case oid.Equal(oidExtCRLNumber):
			if l.Number != nil {
				return nil, errors.New("extension CRLNumber appears twice")
			}
			l.Number = new(big.Int)
			if !value.ReadASN1Integer(l.Number) || !value.Empty() {
				return nil, errors.New("extension CRLNumber: malformed")
			}
			if l.Number.Sign() < 0 || l.Number.BitLen() > 159 {
				return nil, fmt.Errorf("extension CRLNumber: %s is negative or exceeds 20 octets", l.Number)
			}
		default:
			return nil, fmt.Errorf("extension %s: not allowed in a CRL", extName(oid))
		}
	}
	if l.AKI == nil || l.Number == nil {
		return nil, errors.New("missing AKI or CRLNumber extension")
	}
	return l, nil
}

// IsRevoked reports whether the CRL lists serial.
func (l *CRL) IsRevoked(serial *big.Int) bool {
	for _, r := range l.Revoked {
		if r.Serial.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}
