package rpki

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignObject returns the CMS signed object of RFC 6488 in DER: a
// ContentInfo holding a version 3 SignedData with SHA-256 digests, the
// eContent of type contentType, exactly the EE certificate ee (DER), no
// CRLs, and one version 3 SignerInfo identified by the subject key
// identifier of eeKey. The signed attributes are content-type,
// message-digest and, unless signingTime is zero, signing-time; the
// signature algorithm is rsaEncryption (RFC 7935 section 2).
//
// The EE certificate must hold the public half of eeKey; this is not
// checked here, to keep signing cheap.
func SignObject(contentType asn1.ObjectIdentifier, content, ee []byte, eeKey *rsa.PrivateKey, signingTime time.Time) ([]byte, error) {
	if len(contentType) == 0 || len(ee) == 0 || eeKey == nil {
		return nil, errors.New("sign object: missing content type, EE certificate or key")
	}
	digest := sha256.Sum256(content)

	attrs, err := encodeSignedAttrs(contentType, digest[:], signingTime)
	if err != nil {
		return nil, fmt.Errorf("sign object %v: %w", contentType, err)
	}
	sig, err := signSHA256(eeKey, attrs)
	if err != nil {
		return nil, fmt.Errorf("sign object %v: %w", contentType, err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(3)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlgorithm(b, oidSHA256, false) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // EncapsulatedContentInfo
					b.AddASN1ObjectIdentifier(contentType)
					b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(content) })
				})
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { b.AddBytes(ee) }) // [0] IMPLICIT CertificateSet
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignerInfo
						b.AddASN1Int64(3)
						b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(KeyID(&eeKey.PublicKey)) })
						addAlgorithm(b, oidSHA256, false)
						b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { b.AddBytes(attrs[2:]) }) // [0] IMPLICIT SET
						addAlgorithm(b, oidRSAEncryption, true)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("sign object %v: encode: %w", contentType, err)
	}
	return der, nil
}

// encodeSignedAttrs returns the DER SET OF Attribute, sorted as DER
// requires; it is what the signature covers. The returned SET always has a
// one-octet length (it is far below 128 octets), which SignObject relies on
// to re-tag it as [0].
func encodeSignedAttrs(contentType asn1.ObjectIdentifier, digest []byte, signingTime time.Time) ([]byte, error) {
	var attrs [][]byte
	add := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) error {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
		a, err := b.Bytes()
		attrs = append(attrs, a)
		return err
	}
	if err := add(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) }); err != nil {
		return nil, fmt.Errorf("encode content-type attribute: %w", err)
	}
	if err := add(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) }); err != nil {
		return nil, fmt.Errorf("encode message-digest attribute: %w", err)
	}
	if !signingTime.IsZero() {
		if err := add(oidAttrSigningTime, func(b *cryptobyte.Builder) { addTime(b, signingTime) }); err != nil {
			return nil, fmt.Errorf("encode signing-time attribute: %w", err)
		}
	}
	slices.SortFunc(attrs, bytes.Compare)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if out[1] >= 0x80 {
		return nil, errors.New("signed attributes too long")
	}
	return out, nil
}
