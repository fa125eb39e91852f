package rpki

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CertSpec describes a resource certificate (RFC 6487) to issue.
type CertSpec struct {
	// Serial is the positive serial number, unique per issuer.
	Serial *big.Int
	// Subject is the CommonName of the subject, a PrintableString.
	Subject string
	// NotBefore and NotAfter bound the validity, truncated to the second.
	NotBefore, NotAfter time.Time
	// PublicKey is the subject's key. IssueTA uses the public half of its
	// key when nil.
	PublicKey *rsa.PublicKey
	// CA marks a CA certificate; otherwise the certificate is an EE
	// certificate for a signed object.
	CA bool
	// Resources are the RFC 3779 resources; at least one family must be
	// present, and a TA may not inherit.
	Resources Resources

	// CRL is the rsync URI of the issuer's CRL (CRL Distribution Points)
	// and IssuerCert the rsync URI of the issuer's certificate (AIA
	// caIssuers). Both are required, except on a TA where both must be
	// empty.
	CRL, IssuerCert string

	// CARepository, Manifest and Notify form the SIA of a CA certificate:
	// the rsync URI of its publication point (ending in "/"), the rsync
	// URI of its manifest and the optional https URI of its RRDP
	// notification file.
	CARepository, Manifest, Notify string
	// SignedObject is the SIA of an EE certificate: the rsync URI of the
	// signed object that embeds it.
	SignedObject string
}

// Issuer is a CA able to issue: the DER subject name and key identifier of
// its certificate, and its private key.
type Issuer struct {
	Name  []byte // DER Name of the issuer certificate's subject
	KeyID []byte // subject key identifier of the issuer certificate
	Key   *rsa.PrivateKey
}

// NewIssuer returns the Issuer for a certificate in DER and its private
// key, checking that the key is the certificate's.
func NewIssuer(certDER []byte, key *rsa.PrivateKey) (Issuer, error) {
	c, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Issuer{}, fmt.Errorf("parse issuer certificate: %w", err)
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok || key == nil || !pub.Equal(&key.PublicKey) {
		return Issuer{}, fmt.Errorf("issuer %q: %w", c.Subject.CommonName, errKeyMismatch)
	}
	if len(c.SubjectKeyId) == 0 {
		return Issuer{}, fmt.Errorf("issuer %q: no subject key identifier", c.Subject.CommonName)
	}
	return Issuer{Name: c.RawSubject, KeyID: c.SubjectKeyId, Key: key}, nil
}

// KeyID returns the key identifier of pub as RFC 6487 section 4.8.2 defines
// it: the SHA-1 of the DER subjectPublicKey (the RSAPublicKey).
func KeyID(pub *rsa.PublicKey) []byte {
	d := sha1.Sum(x509.MarshalPKCS1PublicKey(pub))
	return d[:]
}

// IssueTA returns a self-signed trust anchor certificate in DER, signed with
// key. The spec must describe a CA without CRL and IssuerCert, whose
// resources do not inherit. The certificate has no AKI (RFC 6487 section
// 4.8.3 lets a self-signed certificate omit it).
func IssueTA(spec CertSpec, key *rsa.PrivateKey) ([]byte, error) {
	if key == nil {
		return nil, errors.New("issue TA: missing key")
	}
	if spec.PublicKey == nil {
		spec.PublicKey = &key.PublicKey
	}
	if !spec.PublicKey.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("issue TA %q: %w", spec.Subject, errKeyMismatch)
	}
	if !spec.CA || spec.CRL != "" || spec.IssuerCert != "" {
		return nil, fmt.Errorf("issue TA %q: a TA is a CA without CRL and IssuerCert", spec.Subject)
	}
	if spec.Resources.IP.InheritV4 || spec.Resources.IP.InheritV6 || spec.Resources.AS.Inherit {
		return nil, fmt.Errorf("issue TA %q: a TA cannot inherit resources", spec.Subject)
	}
	name, err := encodeName(spec.Subject)
	if err != nil {
		return nil, fmt.Errorf("issue TA: %w", err)
	}
	der, err := issue(spec, Issuer{Name: name, Key: key}, true)
	if err != nil {
		return nil, fmt.Errorf("issue TA %q: %w", spec.Subject, err)
	}
	return der, nil
}

// IssueCert returns a CA or EE resource certificate in DER signed by
// issuer.
func IssueCert(spec CertSpec, issuer Issuer) ([]byte, error) {
	if spec.CRL == "" || spec.IssuerCert == "" {
		return nil, fmt.Errorf("issue certificate %q: CRL and IssuerCert are required", spec.Subject)
	}
	der, err := issue(spec, issuer, false)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: %w", spec.Subject, err)
	}
	return der, nil
}

func issue(spec CertSpec, issuer Issuer, selfSigned bool) ([]byte, error) {
	if err := checkSerial("serial", spec.Serial); err != nil {
		return nil, err
	}
	if spec.PublicKey == nil {
		return nil, errors.New("missing subject public key")
	}
	if !spec.NotBefore.Before(spec.NotAfter) {
		return nil, fmt.Errorf("validity %s to %s is empty", spec.NotBefore, spec.NotAfter)
	}
	if len(issuer.Name) == 0 || issuer.Key == nil {
		return nil, errors.New("incomplete issuer")
	}
	subject, err := encodeName(spec.Subject)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(spec.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	exts, err := certExtensions(spec, issuer, selfSigned)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1BigInt(spec.Serial)
		addAlgorithm(b, oidSHA256WithRSA, true)
		b.AddBytes(issuer.Name)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, spec.NotBefore)
			addTime(b, spec.NotAfter)
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
		b.AddASN1(tagExplicit3, func(b *cryptobyte.Builder) { b.AddBytes(exts) })
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode TBSCertificate: %w", err)
	}
	return signTBS(tbs, issuer.Key)
}

// certExtensions returns the DER Extensions of a certificate, in the order
// of RFC 6487 section 4.8.
func certExtensions(spec CertSpec, issuer Issuer, selfSigned bool) ([]byte, error) {
	for _, u := range []struct{ name, uri, scheme string }{
		{"CRL", spec.CRL, "rsync://"},
		{"IssuerCert", spec.IssuerCert, "rsync://"},
		{"CARepository", spec.CARepository, "rsync://"},
		{"Manifest", spec.Manifest, "rsync://"},
		{"Notify", spec.Notify, "https://"},
		{"SignedObject", spec.SignedObject, "rsync://"},
	} {
		if u.uri != "" && !strings.HasPrefix(u.uri, u.scheme) {
			return nil, fmt.Errorf("%s URI %q does not start with %s", u.name, u.uri, u.scheme)
		}
		if !isIA5(u.uri) {
			return nil, fmt.Errorf("%s URI %q is not IA5", u.name, u.uri)
		}
	}
	if spec.CA {
		if spec.CARepository == "" || spec.Manifest == "" || spec.SignedObject != "" {
			return nil, errors.New("a CA needs CARepository and Manifest and no SignedObject")
		}
		if !strings.HasSuffix(spec.CARepository, "/") {
			return nil, fmt.Errorf("CARepository %q does not end in /", spec.CARepository)
		}
	} else if spec.SignedObject == "" || spec.CARepository != "" || spec.Manifest != "" || spec.Notify != "" {
		return nil, errors.New("an EE certificate needs SignedObject and no CA SIA")
	}
	if spec.Resources.IP.Empty() && spec.Resources.AS.Empty() {
		return nil, errors.New("no RFC 3779 resources")
	}
	var ipDER, asDER []byte
	var err error
	if !spec.Resources.IP.Empty() {
		if ipDER, err = spec.Resources.IP.Marshal(); err != nil {
			return nil, err
		}
	}
	if !spec.Resources.AS.Empty() {
		if asDER, err = spec.Resources.AS.Marshal(); err != nil {
			return nil, err
		}
	}

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if spec.CA {
			addExtension(b, oidExtBasicConstraints, true, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Boolean(true) })
			})
		}
		addExtension(b, oidExtSubjectKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(KeyID(spec.PublicKey))
		})
		if !selfSigned {
			addExtension(b, oidExtAuthorityKeyID, false, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(tagImplicit0, func(b *cryptobyte.Builder) { b.AddBytes(issuer.KeyID) })
				})
			})
		}
		addExtension(b, oidExtKeyUsage, true, func(b *cryptobyte.Builder) {
			if spec.CA {
				b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) { b.AddBytes([]byte{1, 0x06}) }) // keyCertSign, cRLSign
			} else {
				b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) { b.AddBytes([]byte{7, 0x80}) }) // digitalSignature
			}
		})
		if !selfSigned {
			addExtension(b, oidExtCRLDistPoints, false, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // distributionPoint
							b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // fullName
								b.AddASN1(tagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(spec.CRL)) })
							})
						})
					})
				})
			})
			addExtension(b, oidExtAuthorityInfo, false, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addAccess(b, oidADCAIssuers, spec.IssuerCert)
				})
			})
		}
		addExtension(b, oidExtSubjectInfo, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if spec.CA {
					addAccess(b, oidADCARepository, spec.CARepository)
					addAccess(b, oidADManifest, spec.Manifest)
					if spec.Notify != "" {
						addAccess(b, oidADNotify, spec.Notify)
					}
				} else {
					addAccess(b, oidADSignedObject, spec.SignedObject)
				}
			})
		})
		addExtension(b, oidExtCertPolicies, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidPolicyRPKI) })
			})
		})
		if ipDER != nil {
			addExtension(b, OIDIPAddrBlocks, true, func(b *cryptobyte.Builder) { b.AddBytes(ipDER) })
		}
		if asDER != nil {
			addExtension(b, OIDASIdentifiers, true, func(b *cryptobyte.Builder) { b.AddBytes(asDER) })
		}
	})
	return b.Bytes()
}

// addExtension adds an Extension whose extnValue is what value builds.
func addExtension(b *cryptobyte.Builder, oid []int, critical bool, value func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(cbasn1.OCTET_STRING, value)
	})
}

// addAccess adds an AccessDescription with a URI.
func addAccess(b *cryptobyte.Builder, method []int, uri string) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(method)
		b.AddASN1(tagURI, func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
	})
}

func isIA5(s string) bool {
	return !bytes.ContainsFunc([]byte(s), func(r rune) bool { return r >= 0x80 || r < 0x20 })
}
