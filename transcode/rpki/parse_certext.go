package rpki

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The parsers of the single certificate extensions of RFC 6487 section 4.8.

func wantCritical(got, want bool) error {
	if got != want {
		if want {
			return errors.New("must be critical")
		}
		return errors.New("must not be critical")
	}
	return nil
}

func (c *Cert) parseBasicConstraints(v cryptobyte.String, critical bool) error {
	if err := wantCritical(critical, true); err != nil {
		return err
	}
	var seq cryptobyte.String
	if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() {
		return errors.New("malformed")
	}
	if seq.Empty() {
		return errors.New("present without cA")
	}
	if !seq.ReadASN1Boolean(&c.IsCA) || !c.IsCA {
		return errors.New("cA not set")
	}
	if !seq.Empty() {
		return errors.New("pathLenConstraint not allowed")
	}
	return nil
}

func (c *Cert) parseAKI(v cryptobyte.String, critical bool) error {
	if err := wantCritical(critical, false); err != nil {
		return err
	}
	var seq cryptobyte.String
	if !v.ReadASN1(&seq, cbasn1.SEQUENCE) || !v.Empty() ||
		!seq.ReadASN1((*cryptobyte.String)(&c.AKI), tagImplicit0) || !seq.Empty() {
		return errors.New("malformed or with authorityCertIssuer/SerialNumber")
	}
	if len(c.AKI) != 20 {
		return fmt.Errorf("key identifier of %d octets, want 20", len(c.AKI))
	}
	return nil
}

func parseKeyUsage(v cryptobyte.String, critical bool) (byte, error) {
	if err := wantCritical(critical, true); err != nil {
		return 0, err
	}
	var bs asn1.BitString
	if !v.ReadASN1BitString(&bs) || !v.Empty() || len(bs.Bytes) == 0 {
		return 0, errors.New("malformed")
	}
	if len(bs.Bytes) > 1 && bytes.ContainsFunc(bs.Bytes[1:], func(r rune) bool { return r != 0 }) {
		return 0, errors.New("bits beyond the first octet")
	}
	return bs.Bytes[0], nil
}

// readURIs reads GeneralNames and returns the URIs; other name forms are
// skipped.
func readURIs(names cryptobyte.String) ([]string, error) {
	var uris []string
	for !names.Empty() {
		var tag cbasn1.Tag
		var val cryptobyte.String
		if !names.ReadAnyASN1(&val, &tag) {
			return nil, errors.New("malformed GeneralName")
		}
		if tag == tagURI {
			if !isIA5(string(val)) {
				return nil, errors.New("URI is not IA5")
			}
			uris = append(uris, string(val))
		}
	}
	return uris, nil
}

func firstWithPrefix(uris []string, prefix string) string {
	for _, u := range uris {
		if strings.HasPrefix(strings.ToLower(u), prefix) {
			return u
		}
	}
	return ""
}

func (c *Cert) parseCRLDP(v cryptobyte.String, critical bool) error {
	if err := wantCritical(critical, false); err != nil {
		return err
	}
	var dps cryptobyte.String
	if !v.ReadASN1(&dps, cbasn1.SEQUENCE) || !v.Empty() || dps.Empty() {
		return errors.New("malformed")
	}
	for !dps.Empty() {
		var dp, name, full cryptobyte.String
		if !dps.ReadASN1(&dp, cbasn1.SEQUENCE) {
			return errors.New("malformed DistributionPoint")
		}
		if !dp.ReadASN1(&name, tagExplicit0) || !dp.Empty() {
			return errors.New("DistributionPoint with reasons or cRLIssuer, or without name")
		}
		if !name.ReadASN1(&full, tagExplicit0) || !name.Empty() {
			return errors.New("DistributionPoint without fullName")
		}
		uris, err := readURIs(full)
		if err != nil {
			return err
		}
		if c.CRL == "" {
			c.CRL = firstWithPrefix(uris, "rsync://")
		}
	}
	if c.CRL == "" {
		return errors.New("no rsync URI")
	}
	return nil
}

// readAccess reads AccessDescriptions and calls f per method and its URIs.
func readAccess(v cryptobyte.String, f func(method asn1.ObjectIdentifier, uris []string) error) error {
	var ads cryptobyte.String
	if !v.ReadASN1(&ads, cbasn1.SEQUENCE) || !v.Empty() || ads.Empty() {
		return errors.New("malformed")
	}
	for !ads.Empty() {
		var ad, loc cryptobyte.String
		var method asn1.ObjectIdentifier
		var tag cbasn1.Tag
		if !ads.ReadASN1(&ad, cbasn1.SEQUENCE) || !ad.ReadASN1ObjectIdentifier(&method) ||
			!ad.ReadAnyASN1Element(&loc, &tag) || !ad.Empty() {
			return errors.New("malformed AccessDescription")
		}
		uris, err := readURIs(loc)
		if err != nil {
			return err
		}
		if err := f(method, uris); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cert) parseAIA(v cryptobyte.String, critical bool) error {
	if err := wantCritical(critical, false); err != nil {
		return err
	}
	err := readAccess(v, func(method asn1.ObjectIdentifier, uris []string) error {
		if !method.Equal(oidADCAIssuers) {
			return fmt.Errorf("access method %v, want caIssuers", method)
		}
		if c.IssuerCert == "" {
			c.IssuerCert = firstWithPrefix(uris, "rsync://")
		}
		return nil
	})
	if err == nil && c.IssuerCert == "" {
		err = errors.New("no rsync caIssuers URI")
	}
	return err
}

func parseSIA(v cryptobyte.String, critical bool) (siaEntries, error) {
	var s siaEntries
	if err := wantCritical(critical, false); err != nil {
		return s, err
	}
	err := readAccess(v, func(method asn1.ObjectIdentifier, uris []string) error {
		rsync := firstWithPrefix(uris, "rsync://")
		switch {
		case method.Equal(oidADCARepository):
			if rsync != "" {
				s.repo = append(s.repo, rsync)
			}
		case method.Equal(oidADManifest):
			if rsync != "" {
				s.mft = append(s.mft, rsync)
			}
		case method.Equal(oidADSignedObject):
			if rsync != "" {
				s.signed = append(s.signed, rsync)
			}
		case method.Equal(oidADNotify):
			if u := firstWithPrefix(uris, "https://"); u != "" {
				s.notify = append(s.notify, u)
			}
		default:
			s.other++
		}
		return nil
	})
	return s, err
}

func parsePolicies(v cryptobyte.String, critical bool) error {
	if err := wantCritical(critical, true); err != nil {
		return err
	}
	var pols, pol cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !v.ReadASN1(&pols, cbasn1.SEQUENCE) || !v.Empty() || !pols.ReadASN1(&pol, cbasn1.SEQUENCE) ||
		!pol.ReadASN1ObjectIdentifier(&oid) {
		return errors.New("malformed")
	}
	if !pols.Empty() {
		return errors.New("more than one policy")
	}
	if !oid.Equal(oidPolicyRPKI) {
		return fmt.Errorf("policy %v, want id-cp-ipAddr-asNumber", oid)
	}
	if pol.Empty() {
		return nil
	}
	var quals cryptobyte.String
	if !pol.ReadASN1(&quals, cbasn1.SEQUENCE) || !pol.Empty() {
		return errors.New("malformed policyQualifiers")
	}
	for !quals.Empty() {
		var q cryptobyte.String
		var qid asn1.ObjectIdentifier
		if !quals.ReadASN1(&q, cbasn1.SEQUENCE) || !q.ReadASN1ObjectIdentifier(&qid) {
			return errors.New("malformed PolicyQualifierInfo")
		}
		if !qid.Equal(oidQualifierCPS) {
			return fmt.Errorf("policy qualifier %v, only CPS is allowed", qid)
		}
	}
	return nil
}

// extName names the extensions of the profile for error messages.
func extName(oid asn1.ObjectIdentifier) string {
	for _, e := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{
		{oidExtBasicConstraints, "BasicConstraints"}, {oidExtSubjectKeyID, "SKI"}, {oidExtAuthorityKeyID, "AKI"},
		{oidExtKeyUsage, "KeyUsage"}, {oidExtCRLDistPoints, "CRLDP"}, {oidExtAuthorityInfo, "AIA"},
		{oidExtSubjectInfo, "SIA"}, {oidExtCertPolicies, "CertificatePolicies"}, {OIDIPAddrBlocks, "IPAddrBlocks"},
		{OIDASIdentifiers, "ASIdentifiers"}, {oidExtExtKeyUsage, "ExtKeyUsage"}, {oidExtCRLNumber, "CRLNumber"},
	} {
		if e.oid.Equal(oid) {
			return e.name
		}
	}
	return oid.String()
}
