package rpki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Cert is a parsed resource certificate (RFC 6487) whose profile has been
// checked by ParseCert. It says nothing yet about its issuer: see
// CheckSignatureFrom and Verify.
type Cert struct {
	Raw       []byte // the whole certificate
	RawTBS    []byte // TBSCertificate, what the signature covers
	Signature []byte

	Serial          *big.Int
	Issuer, Subject []byte // DER Names
	SubjectCN       string
	NotBefore       time.Time
	NotAfter        time.Time

	RawSPKI   []byte // DER SubjectPublicKeyInfo
	PublicKey *rsa.PublicKey

	IsCA bool
	// SelfSigned is set when issuer and subject are the same and the AKI is
	// absent or equal to the SKI: a trust anchor candidate, which has no
	// CRLDP and no AIA.
	SelfSigned bool
	SKI, AKI   []byte

	// CRL is the rsync URI of the CRL Distribution Points and IssuerCert
	// the rsync URI of the AIA caIssuers; both empty on a trust anchor.
	CRL, IssuerCert string
	// CARepository, Manifest and Notify come from the SIA of a CA;
	// SignedObject from the SIA of an EE certificate. Where the SIA lists
	// several locations, these are the first rsync one (https for Notify).
	CARepository, Manifest, Notify string
	SignedObject                   string

	// Resources are the RFC 3779 resources as encoded, inherit included.
	Resources Resources
}

// Additional OIDs recognised when parsing.
var (
	oidExtExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSerialNumber   = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidQualifierCPS   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 2, 1}
)

// ParseCert parses a resource certificate in DER and checks its RFC 6487
// profile: version 3, positive serial of at most 20 octets, sha256WithRSA
// in both places, names of one CommonName and an optional serialNumber,
// validity with the right time types, an RSA 2048-bit key with exponent
// 65537 (RFC 7935), no unique identifiers, and exactly the extensions of
// RFC 6487 section 4.8 with their criticality, a CA or EE shape, and the
// RFC 3779 resources in canonical form. Unknown extensions are rejected,
// critical or not. The Cert refers to der, which must not change
// afterwards.
func ParseCert(der []byte) (*Cert, error) {
	c, err := parseCert(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return c, nil
}

func parseCert(der []byte) (*Cert, error) {
	c := &Cert{Raw: der}
	s, err := readSigned(der, "Certificate", "TBSCertificate")
	if err != nil {
		return nil, err
	}
	c.RawTBS, c.Signature = s.rawTBS, s.sig
	tbs := s.tbs

	var version cryptobyte.String
	var v int64
	if !tbs.ReadASN1(&version, tagExplicit0) || !version.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || !version.Empty() {
		return nil, errors.New("version missing or malformed (want v3)")
	}
	if v != 2 {
		return nil, fmt.Errorf("version %d, want 2 (v3)", v)
	}
	c.Serial = new(big.Int)
	if !tbs.ReadASN1Integer(c.Serial) {
		return nil, errors.New("malformed serialNumber")
	}
	if err := checkSerial("serial", c.Serial); err != nil {
		return nil, err
	}
	if err := s.checkInnerAlg(&tbs, "4.1.1.2"); err != nil {
		return nil, err
	}
	var issuer, subject, validity, spki cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuer")
	}
	if _, err := checkName(issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if !tbs.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed validity")
	}
	if c.NotBefore, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notBefore: %w", err)
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notAfter: %w", err)
	}
	if !validity.Empty() {
		return nil, errors.New("trailing data in validity")
	}
	if !c.NotBefore.Before(c.NotAfter) {
		return nil, fmt.Errorf("notBefore %s is not before notAfter %s", c.NotBefore, c.NotAfter)
	}
	if !tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed subject")
	}
	if c.SubjectCN, err = checkName(subject); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	c.Issuer, c.Subject = issuer, subject
	if !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	c.RawSPKI = spki
	if c.PublicKey, err = parseRSAKey(spki); err != nil {
		return nil, err
	}
	if tbs.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific()) || tbs.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific().Constructed()) ||
		tbs.PeekASN1Tag(cbasn1.Tag(2).ContextSpecific()) || tbs.PeekASN1Tag(cbasn1.Tag(2).ContextSpecific().Constructed()) {
		return nil, errors.New("unique identifiers are not allowed")
	}
	var extsWrap, exts cryptobyte.String
	if !tbs.ReadASN1(&extsWrap, tagExplicit3) || !extsWrap.ReadASN1(&exts, cbasn1.SEQUENCE) || !extsWrap.Empty() || !tbs.Empty() {
		return nil, errors.New("extensions missing or malformed")
	}
	if err := c.parseExtensions(exts); err != nil {
		return nil, err
	}
	return c, nil
}

// checkSigAlg checks an AlgorithmIdentifier (element) for sha256WithRSA
// with NULL or absent parameters.
func checkSigAlg(alg cryptobyte.String) error {
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return errors.New("malformed AlgorithmIdentifier")
	}
	if !oid.Equal(oidSHA256WithRSA) {
		return fmt.Errorf("algorithm %v, want sha256WithRSAEncryption", oid)
	}
	return checkNullParams(alg)
}

// checkNullParams accepts absent or NULL parameters.
func checkNullParams(alg cryptobyte.String) error {
	if alg.Empty() {
		return nil
	}
	var null cryptobyte.String
	if !alg.ReadASN1(&null, cbasn1.NULL) || len(null) != 0 || !alg.Empty() {
		return errors.New("algorithm parameters are not NULL")
	}
	return nil
}

// checkName checks a Name (RFC 6487 section 4.4): exactly one CommonName
// as a PrintableString, at most one serialNumber, nothing else. It returns
// the CommonName.
func checkName(name cryptobyte.String) (string, error) {
	if !name.ReadASN1(&name, cbasn1.SEQUENCE) {
		return "", errors.New("malformed Name")
	}
	var cn string
	var ncn, nser int
	for !name.Empty() {
		var rdn cryptobyte.String
		if !name.ReadASN1(&rdn, cbasn1.SET) || rdn.Empty() {
			return "", errors.New("malformed RelativeDistinguishedName")
		}
		for !rdn.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			var val cryptobyte.String
			if !rdn.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) ||
				!atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return "", errors.New("malformed AttributeTypeAndValue")
			}
			switch {
			case oid.Equal(oidCommonName):
				ncn++
				if tag != cbasn1.PrintableString || !isPrintable(string(val)) {
					return "", errors.New("commonName is not a PrintableString")
				}
				cn = string(val)
			case oid.Equal(oidSerialNumber):
				nser++
				if tag != cbasn1.PrintableString || !isPrintable(string(val)) {
					return "", errors.New("serialNumber is not a PrintableString")
				}
			default:
				return "", fmt.Errorf("attribute %v is not allowed", oid)
			}
		}
	}
	if ncn != 1 || nser > 1 {
		return "", fmt.Errorf("%d commonNames and %d serialNumbers, want 1 and at most 1", ncn, nser)
	}
	return cn, nil
}

// readTime reads a Time: UTCTime through 2049, GeneralizedTime from 2050
// (RFC 5280 section 4.1.2.5).
func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("malformed UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("malformed GeneralizedTime")
		}
		if t.Year() < 2050 {
			return t, fmt.Errorf("GeneralizedTime %s before 2050", t.Format(time.RFC3339))
		}
	default:
		return t, errors.New("missing time")
	}
	return t, nil
}

// parseRSAKey parses a SubjectPublicKeyInfo and checks the RFC 7935 key:
// rsaEncryption with NULL parameters, 2048 bits, exponent 65537.
func parseRSAKey(spki []byte) (*rsa.PublicKey, error) {
	in := cryptobyte.String(spki)
	var seq, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	if !oid.Equal(oidRSAEncryption) {
		return nil, fmt.Errorf("public key algorithm %v, want rsaEncryption", oid)
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("public key is not RSA")
	}
	if key.N.BitLen() != KeyBits || key.E != 65537 {
		return nil, fmt.Errorf("RSA key of %d bits and exponent %d, want %d and 65537", key.N.BitLen(), key.E, KeyBits)
	}
	return key, nil
}

// certExt is what the extension pass collects before the shape checks.
type certExt struct {
	seen                    map[string]bool
	bc, ku, crldp, aia, sia bool
	ip, as                  bool
	keyUsage                byte
	sia0                    siaEntries
}

type siaEntries struct {
	repo, mft, notify, signed []string
	other                     int
}

func (c *Cert) parseExtensions(exts cryptobyte.String) error {
	e := certExt{seen: map[string]bool{}}
	var ipDER, asDER []byte
	for !exts.Empty() {
		var ext, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		critical := false
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return errors.New("malformed extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
			if !ext.ReadASN1Boolean(&critical) || !critical {
				return fmt.Errorf("extension %v: malformed or default critical flag", oid)
			}
		}
		if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !ext.Empty() {
			return fmt.Errorf("extension %v: malformed", oid)
		}
		key := oid.String()
		if e.seen[key] {
			return fmt.Errorf("extension %s appears twice", extName(oid))
		}
		e.seen[key] = true
		var err error
		switch {
		case oid.Equal(oidExtBasicConstraints):
			err = c.parseBasicConstraints(value, critical)
		case oid.Equal(oidExtSubjectKeyID):
			err = wantCritical(critical, false)
			if err == nil && (!value.ReadASN1((*cryptobyte.String)(&c.SKI), cbasn1.OCTET_STRING) || !value.Empty()) {
				err = errors.New("malformed")
			}
			if err == nil && !bytes.Equal(c.SKI, KeyID(c.PublicKey)) {
				err = errors.New("not the SHA-1 of the public key")
			}
		case oid.Equal(oidExtAuthorityKeyID):
			err = c.parseAKI(value, critical)
		case oid.Equal(oidExtKeyUsage):
			e.keyUsage, err = parseKeyUsage(value, critical)
		case oid.Equal(oidExtCRLDistPoints):
			err = c.parseCRLDP(value, critical)
		case oid.Equal(oidExtAuthorityInfo):
			err = c.parseAIA(value, critical)
		case oid.Equal(oidExtSubjectInfo):
			e.sia0, err = parseSIA(value, critical)
		case oid.Equal(oidExtCertPolicies):
			err = parsePolicies(value, critical)
		case oid.Equal(OIDIPAddrBlocks):
			err = wantCritical(critical, true)
			ipDER = value
		case oid.Equal(OIDASIdentifiers):
			err = wantCritical(critical, true)
			asDER = value
		default:
			err = errors.New("not allowed in a resource certificate")
		}
		if err != nil {
			return fmt.Errorf("extension %s: %w", extName(oid), err)
		}
	}
	return c.checkShape(e, ipDER, asDER)
}

func (c *Cert) checkShape(e certExt, ipDER, asDER []byte) error {
	for _, r := range []struct {
		oid  asn1.ObjectIdentifier
		name string
	}{{oidExtSubjectKeyID, "SKI"}, {oidExtKeyUsage, "KeyUsage"}, {oidExtSubjectInfo, "SIA"}, {oidExtCertPolicies, "CertificatePolicies"}} {
		if !e.seen[r.oid.String()] {
			return fmt.Errorf("missing %s extension", r.name)
		}
	}
	c.SelfSigned = bytes.Equal(c.Issuer, c.Subject) && (c.AKI == nil || bytes.Equal(c.AKI, c.SKI))
	if c.SelfSigned {
		if c.CRL != "" || c.IssuerCert != "" {
			return errors.New("self-signed certificate with CRLDP or AIA")
		}
	} else {
		switch {
		case c.AKI == nil:
			return errors.New("missing AKI extension")
		case c.CRL == "":
			return errors.New("missing CRLDP extension")
		case c.IssuerCert == "":
			return errors.New("missing AIA extension")
		}
	}
	const digitalSignature, keyCertSign, cRLSign = 0x80, 0x04, 0x02
	if c.IsCA {
		if e.keyUsage != keyCertSign|cRLSign {
			return fmt.Errorf("CA key usage %#x, want keyCertSign and cRLSign", e.keyUsage)
		}
		if len(e.sia0.signed) > 0 || e.sia0.other > 0 {
			return errors.New("CA SIA with signedObject or unknown access methods")
		}
		if len(e.sia0.repo) == 0 || len(e.sia0.mft) == 0 {
			return errors.New("CA SIA without rsync caRepository and rpkiManifest")
		}
		c.CARepository, c.Manifest = e.sia0.repo[0], e.sia0.mft[0]
		if len(e.sia0.notify) > 0 {
			c.Notify = e.sia0.notify[0]
		}
	} else {
		if e.keyUsage != digitalSignature {
			return fmt.Errorf("EE key usage %#x, want digitalSignature", e.keyUsage)
		}
		if c.SelfSigned {
			return errors.New("self-signed EE certificate")
		}
		// rpkiNotify is tolerated (rpkid writes it), as rpki-client does.
		if len(e.sia0.repo) > 0 || len(e.sia0.mft) > 0 || e.sia0.other > 0 {
			return errors.New("EE SIA with caRepository, rpkiManifest or unknown access methods")
		}
		if len(e.sia0.signed) == 0 {
			return errors.New("EE SIA without rsync signedObject")
		}
		c.SignedObject = e.sia0.signed[0]
	}
	if ipDER == nil && asDER == nil {
		return errors.New("no RFC 3779 resources")
	}
	if ipDER != nil {
		ip, err := ParseIPResources(ipDER)
		if err != nil {
			return err
		}
		if ip.Empty() {
			return errors.New("IP resources without any family")
		}
		if canon, err := ip.Marshal(); err != nil || !bytes.Equal(canon, ipDER) {
			return errors.New("IP resources not in canonical form (RFC 3779 section 2.2.3)")
		}
		c.Resources.IP = ip
	}
	if asDER != nil {
		as, err := ParseASResources(asDER)
		if err != nil {
			return err
		}
		if canon, err := as.Marshal(); err != nil || !bytes.Equal(canon, asDER) {
			return errors.New("AS resources empty or not in canonical form (RFC 3779 section 3.2.3)")
		}
		c.Resources.AS = as
	}
	if c.SelfSigned && (c.Resources.IP.InheritV4 || c.Resources.IP.InheritV6 || c.Resources.AS.Inherit) {
		return errors.New("self-signed certificate inherits resources")
	}
	return nil
}
