package rpki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var oidAttrBinarySigningTime = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 46}

// SignedObject is a parsed CMS signed object (RFC 6488) whose CMS profile,
// message digest and signature have been checked by ParseSignedObject. Its
// EE certificate is not yet tied to an issuer: see Verify.
type SignedObject struct {
	// Raw is the object as given; DER is its DER-length form (the same
	// slice when Raw was already DER).
	Raw, DER []byte

	ContentType asn1.ObjectIdentifier
	Content     []byte // eContent
	EE          *Cert
	// SigningTime is the signing-time attribute, zero when absent.
	SigningTime time.Time

	// SignedAttrs is the DER SET OF Attribute the signature covers.
	SignedAttrs []byte
	Signature   []byte
}

// ParseSignedObject parses a CMS signed object (RFC 6488) in BER or DER,
// indefinite lengths and constructed OCTET STRINGs included, and checks:
// SignedData version 3 with exactly one digest algorithm, SHA-256; an
// eContent; exactly one certificate, an EE certificate passing ParseCert;
// no CRLs; exactly one SignerInfo of version 3 whose sid is the EE's SKI,
// with digest SHA-256, signed attributes holding exactly one content-type
// equal to eContentType, one message-digest equal to SHA-256(eContent), and
// at most one signing-time and one binary-signing-time, each with one
// value; signature algorithm rsaEncryption or sha256WithRSA; no unsigned
// attributes; and an RSA PKCS #1 v1.5 SHA-256 signature by the EE's key
// over the DER SET OF the signed attributes. The SignedObject refers to der,
// which must not change afterwards.
func ParseSignedObject(der []byte) (*SignedObject, error) {
	so, err := parseSignedObject(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed object: %w", err)
	}
	return so, nil
}

func parseSignedObject(raw []byte) (*SignedObject, error) {
	der, err := berToDER(raw)
	if err != nil {
		return nil, err
	}
	so := &SignedObject{Raw: raw, DER: der}
	in := cryptobyte.String(der)
	var ci, wrap, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&oid) {
		return nil, errors.New("malformed ContentInfo")
	}
	if !oid.Equal(oidSignedData) {
		return nil, fmt.Errorf("content type %v, want signedData", oid)
	}
	if !ci.ReadASN1(&wrap, tagExplicit0) || !ci.Empty() || !wrap.ReadASN1(&sd, cbasn1.SEQUENCE) || !wrap.Empty() {
		return nil, errors.New("malformed ContentInfo content")
	}
	var v int64
	if !sd.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) {
		return nil, errors.New("malformed SignedData version")
	}
	if v != 3 {
		return nil, fmt.Errorf("SignedData version %d, want 3", v)
	}
	var digestAlgs, alg cryptobyte.String
	if !sd.ReadASN1(&digestAlgs, cbasn1.SET) {
		return nil, errors.New("malformed digestAlgorithms")
	}
	if !digestAlgs.ReadASN1(&alg, cbasn1.SEQUENCE) || !digestAlgs.Empty() {
		return nil, errors.New("digestAlgorithms must hold exactly one algorithm")
	}
	if err := checkDigestAlg(alg); err != nil {
		return nil, fmt.Errorf("digestAlgorithms: %w", err)
	}

	var eci, ecWrap cryptobyte.String
	if !sd.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&so.ContentType) {
		return nil, errors.New("malformed encapContentInfo")
	}
	if !eci.ReadASN1(&ecWrap, tagExplicit0) || !eci.Empty() ||
		!ecWrap.ReadASN1((*cryptobyte.String)(&so.Content), cbasn1.OCTET_STRING) || !ecWrap.Empty() {
		return nil, errors.New("encapContentInfo without eContent or malformed")
	}

	var certs, eeDER cryptobyte.String
	if !sd.ReadASN1(&certs, tagExplicit0) {
		return nil, errors.New("no certificates")
	}
	if !certs.ReadASN1Element(&eeDER, cbasn1.SEQUENCE) || !certs.Empty() {
		return nil, errors.New("certificates must hold exactly one certificate")
	}
	if sd.PeekASN1Tag(tagExplicit1) {
		return nil, errors.New("CRLs are not allowed")
	}
	if so.EE, err = ParseCert(eeDER); err != nil {
		return nil, fmt.Errorf("EE %w", err)
	}
	if so.EE.IsCA {
		return nil, errors.New("the certificate is a CA certificate, want EE")
	}

	var sis, si cryptobyte.String
	if !sd.ReadASN1(&sis, cbasn1.SET) || !sd.Empty() {
		return nil, errors.New("malformed signerInfos or trailing data")
	}
	if !sis.ReadASN1(&si, cbasn1.SEQUENCE) || !sis.Empty() {
		return nil, errors.New("signerInfos must hold exactly one SignerInfo")
	}
	if err := so.parseSignerInfo(si); err != nil {
		return nil, fmt.Errorf("SignerInfo: %w", err)
	}
	return so, nil
}

// checkDigestAlg checks an AlgorithmIdentifier (content) for SHA-256 with
// absent or NULL parameters.
func checkDigestAlg(alg cryptobyte.String) error {
	var oid asn1.ObjectIdentifier
	if !alg.ReadASN1ObjectIdentifier(&oid) {
		return errors.New("malformed AlgorithmIdentifier")
	}
	if !oid.Equal(oidSHA256) {
		return fmt.Errorf("digest algorithm %v, want SHA-256", oid)
	}
	return checkNullParams(alg)
}

func (so *SignedObject) parseSignerInfo(si cryptobyte.String) error {
	var v int64
	if !si.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) {
		return errors.New("malformed version")
	}
	if v != 3 {
		return fmt.Errorf("version %d, want 3", v)
	}
	var sid, alg, attrs, sigAlg cryptobyte.String
	if !si.ReadASN1(&sid, tagImplicit0) {
		return errors.New("sid is not a subjectKeyIdentifier")
	}
	if !bytes.Equal(sid, so.EE.SKI) {
		return errors.New("sid does not match the EE certificate's SKI")
	}
	if !si.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return errors.New("malformed digestAlgorithm")
	}
	if err := checkDigestAlg(alg); err != nil {
		return err
	}
	if !si.ReadASN1Element(&attrs, tagExplicit0) {
		return errors.New("no signed attributes")
	}
	// The signature covers the DER SET OF: the same bytes with the SET tag.
	so.SignedAttrs = append([]byte{0x31}, attrs[1:]...)
	var body cryptobyte.String
	attrs.ReadASN1(&body, tagExplicit0)
	if err := so.parseSignedAttrs(body); err != nil {
		return err
	}
	if !si.ReadASN1(&sigAlg, cbasn1.SEQUENCE) {
		return errors.New("malformed signatureAlgorithm")
	}
	var oid asn1.ObjectIdentifier
	if !sigAlg.ReadASN1ObjectIdentifier(&oid) {
		return errors.New("malformed signatureAlgorithm")
	}
	if !oid.Equal(oidRSAEncryption) && !oid.Equal(oidSHA256WithRSA) {
		return fmt.Errorf("signature algorithm %v, want rsaEncryption or sha256WithRSA", oid)
	}
	if err := checkNullParams(sigAlg); err != nil {
		return err
	}
	if !si.ReadASN1((*cryptobyte.String)(&so.Signature), cbasn1.OCTET_STRING) {
		return errors.New("malformed or missing signature")
	}
	if !si.Empty() {
		return errors.New("unsigned attributes or trailing data are not allowed")
	}
	d := sha256.Sum256(so.SignedAttrs)
	if err := rsa.VerifyPKCS1v15(so.EE.PublicKey, crypto.SHA256, d[:], so.Signature); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

func (so *SignedObject) parseSignedAttrs(attrs cryptobyte.String) error {
	var haveCT, haveMD, haveST, haveBST bool
	for !attrs.Empty() {
		var attr, values, value cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return errors.New("malformed signed attribute")
		}
		var tag cbasn1.Tag
		if !values.ReadAnyASN1Element(&value, &tag) || !values.Empty() {
			return fmt.Errorf("signed attribute %v must hold exactly one value", oid)
		}
		dup := false
		switch {
		case oid.Equal(oidAttrContentType):
			dup, haveCT = haveCT, true
			var ct asn1.ObjectIdentifier
			if !value.ReadASN1ObjectIdentifier(&ct) {
				return errors.New("malformed content-type attribute")
			}
			if !ct.Equal(so.ContentType) {
				return fmt.Errorf("content-type attribute %v differs from eContentType %v", ct, so.ContentType)
			}
		case oid.Equal(oidAttrMessageDigest):
			dup, haveMD = haveMD, true
			var md cryptobyte.String
			if !value.ReadASN1(&md, cbasn1.OCTET_STRING) {
				return errors.New("malformed message-digest attribute")
			}
			d := sha256.Sum256(so.Content)
			if !bytes.Equal(md, d[:]) {
				return errors.New("message-digest attribute does not match the eContent")
			}
		case oid.Equal(oidAttrSigningTime):
			dup, haveST = haveST, true
			t, err := readAnyTime(&value)
			if err != nil {
				return fmt.Errorf("signing-time attribute: %w", err)
			}
			so.SigningTime = t
		case oid.Equal(oidAttrBinarySigningTime):
			dup, haveBST = haveBST, true
			var n int64
			if !value.ReadASN1Int64WithTag(&n, cbasn1.INTEGER) || n < 0 {
				return errors.New("malformed binary-signing-time attribute")
			}
		default:
			return fmt.Errorf("signed attribute %v is not allowed", oid)
		}
		if dup {
			return fmt.Errorf("signed attribute %v appears twice", oid)
		}
	}
	if !haveCT || !haveMD {
		return errors.New("signed attributes lack content-type or message-digest")
	}
	return nil
}

// readAnyTime reads a UTCTime or a GeneralizedTime without the RFC 5280
// rule on years.
func readAnyTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime) && s.ReadASN1UTCTime(&t):
	case s.PeekASN1Tag(cbasn1.GeneralizedTime) && s.ReadASN1GeneralizedTime(&t):
	default:
		return t, errors.New("malformed time")
	}
	if !s.Empty() {
		return t, errors.New("trailing data after time")
	}
	return t, nil
}
