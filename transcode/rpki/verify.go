package rpki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

var oidContentGBR = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 35}

// verifySHA256 checks an RSA PKCS #1 v1.5 SHA-256 signature.
func verifySHA256(pub *rsa.PublicKey, msg, sig []byte) error {
	d := sha256.Sum256(msg)
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
}

// CheckSignatureFrom checks that issuer signed c: issuer is a CA, c's issuer
// name is issuer's subject, c's AKI is issuer's SKI (a self-signed c
// without AKI passes issuer == c), and the RSA PKCS #1 v1.5 SHA-256
// signature over c's TBSCertificate verifies with issuer's key. For a
// trust anchor, call c.CheckSignatureFrom(c).
func (c *Cert) CheckSignatureFrom(issuer *Cert) error {
	if err := c.checkSignatureFrom(issuer); err != nil {
		return fmt.Errorf("check certificate %q against issuer %q: %w", c.SubjectCN, issuer.SubjectCN, err)
	}
	return nil
}

func (c *Cert) checkSignatureFrom(issuer *Cert) error {
	switch {
	case !issuer.IsCA:
		return errors.New("issuer is not a CA")
	case !bytes.Equal(c.Issuer, issuer.Subject):
		return errors.New("issuer name differs from the issuer's subject")
	case c.AKI == nil && c != issuer && !bytes.Equal(c.SKI, issuer.SKI):
		return errors.New("no AKI and not self-signed")
	case c.AKI != nil && !bytes.Equal(c.AKI, issuer.SKI):
		return errors.New("AKI differs from the issuer's SKI")
	}
	if err := verifySHA256(issuer.PublicKey, c.RawTBS, c.Signature); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

// checkValidity checks that now falls within [NotBefore, NotAfter].
func (c *Cert) checkValidity(now time.Time) error {
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("certificate %q is valid from %s to %s, not at %s", c.SubjectCN,
			c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifyTA checks c as a trust anchor at now: a self-signed CA whose
// signature verifies with its own key, valid at now. Matching its key with
// the TAL (RawSPKI) is the caller's.
func (c *Cert) VerifyTA(now time.Time) error {
	if !c.SelfSigned || !c.IsCA {
		return fmt.Errorf("verify TA %q: not a self-signed CA certificate", c.SubjectCN)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		return fmt.Errorf("verify TA: %w", err)
	}
	if err := c.checkValidity(now); err != nil {
		return fmt.Errorf("verify TA: %w", err)
	}
	return nil
}

// Verify checks c as a certificate issued by issuer, at now, with
// issuer's current CRL crl: CheckSignatureFrom, crl verified against issuer
// and current at now (CRL.Verify), c not revoked, c and issuer valid at now,
// and c's resources within issuer's. It returns c's resources with inherit
// resolved against issuer.
//
// issuer.Resources must not inherit: in a chain, replace each verified CA
// certificate's Resources with what Verify returned before verifying its
// children (a trust anchor never inherits).
func (c *Cert) Verify(issuer *Cert, crl *CRL, now time.Time) (Resources, error) {
	res, err := c.verify(issuer, crl, now)
	if err != nil {
		return Resources{}, fmt.Errorf("verify certificate %q: %w", c.SubjectCN, err)
	}
	return res, nil
}

func (c *Cert) verify(issuer *Cert, crl *CRL, now time.Time) (Resources, error) {
	if crl == nil {
		return Resources{}, errors.New("no CRL")
	}
	if err := crl.Verify(issuer, now); err != nil {
		return Resources{}, err
	}
	return c.verifyIssued(issuer, crl.IsRevoked, now)
}

// verifyIssued is verify without the CRL's own checks: the caller has
// verified the CRL once for the whole publication point and passes its
// revocation test.
func (c *Cert) verifyIssued(issuer *Cert, revoked func(*big.Int) bool, now time.Time) (Resources, error) {
	if err := c.checkSignatureFrom(issuer); err != nil {
		return Resources{}, err
	}
	if revoked(c.Serial) {
		return Resources{}, fmt.Errorf("serial %s is revoked", c.Serial)
	}
	if err := c.checkValidity(now); err != nil {
		return Resources{}, err
	}
	if err := issuer.checkValidity(now); err != nil {
		return Resources{}, fmt.Errorf("issuer: %w", err)
	}
	return resolveResources(c.Resources, issuer.Resources)
}

// Verify checks that issuer signed l (issuer name, AKI, RSA PKCS #1 v1.5
// SHA-256 over TBSCertList) and that now falls within [ThisUpdate,
// NextUpdate].
func (l *CRL) Verify(issuer *Cert, now time.Time) error {
	switch {
	case !issuer.IsCA:
		return errors.New("verify CRL: issuer is not a CA")
	case !bytes.Equal(l.Issuer, issuer.Subject):
		return fmt.Errorf("verify CRL %s: issuer name differs from %q", l.Number, issuer.SubjectCN)
	case !bytes.Equal(l.AKI, issuer.SKI):
		return fmt.Errorf("verify CRL %s: AKI differs from the SKI of %q", l.Number, issuer.SubjectCN)
	}
	if err := verifySHA256(issuer.PublicKey, l.RawTBS, l.Signature); err != nil {
		return fmt.Errorf("verify CRL %s: signature: %w", l.Number, err)
	}
	if now.Before(l.ThisUpdate) || now.After(l.NextUpdate) {
		return fmt.Errorf("verify CRL %s: current from %s to %s, not at %s", l.Number,
			l.ThisUpdate.Format(time.RFC3339), l.NextUpdate.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// Verify checks so at now against the CA certificate issuer and its CRL
// crl: the EE certificate as Cert.Verify does, then the content by type:
//   - ROA: ParseROA, an EE without inherit, every prefix within the EE's
//     IP resources;
//   - manifest: ParseManifest, an EE that only inherits, thisUpdate and
//     nextUpdate within the EE's validity, now within [thisUpdate,
//     nextUpdate];
//   - ASPA: ParseASPA, an EE without IP resources whose AS resources hold
//     the customer AS;
//   - Ghostbusters (RFC 6493): an EE that only inherits, a vCard 4.0 with
//     only the allowed properties, an FN and a way to reach someone.
//
// Other content types get the EE checks only. The file hashes of a
// manifest are checked by Manifest.CheckFiles.
func (so *SignedObject) Verify(issuer *Cert, crl *CRL, now time.Time) error {
	if err := so.verify(issuer, crl, now); err != nil {
		return fmt.Errorf("verify signed object %s: %w", so.EE.SignedObject, err)
	}
	return nil
}

func (so *SignedObject) verify(issuer *Cert, crl *CRL, now time.Time) error {
	if crl == nil {
		return errors.New("EE certificate: no CRL")
	}
	if err := crl.Verify(issuer, now); err != nil {
		return fmt.Errorf("EE certificate: %w", err)
	}
	_, err := so.verifyIssued(issuer, crl.IsRevoked, now)
	return err
}

// verifyIssued is verify with a CRL the caller has verified; it returns the
// parsed content (ROA, Manifest or ASPA; nil for other types).
func (so *SignedObject) verifyIssued(issuer *Cert, revoked func(*big.Int) bool, now time.Time) (any, error) {
	res, err := so.EE.verifyIssued(issuer, revoked, now)
	if err != nil {
		return nil, fmt.Errorf("EE certificate: %w", err)
	}
	ee := so.EE.Resources
	switch {
	case so.ContentType.Equal(OIDContentROA):
		roa, err := ParseROA(so.Content)
		if err != nil {
			return nil, err
		}
		if ee.IP.InheritV4 || ee.IP.InheritV6 {
			return nil, errors.New("ROA EE certificate inherits IP resources")
		}
		for _, p := range roa.Prefixes {
			if !containsIP(res.IP.Ranges, PrefixRange(p.Prefix)) {
				return nil, fmt.Errorf("%w: ROA prefix %s is not within the EE certificate's resources", ErrOverclaim, p.Prefix)
			}
		}
		return roa, nil
	case so.ContentType.Equal(OIDContentManifest):
		m, err := ParseManifest(so.Content)
		if err != nil {
			return nil, err
		}
		if !onlyInherits(ee) {
			return nil, errors.New("manifest EE certificate does not only inherit resources")
		}
		if m.ThisUpdate.Before(so.EE.NotBefore) || m.NextUpdate.After(so.EE.NotAfter) {
			return nil, errors.New("manifest thisUpdate..nextUpdate exceeds the EE certificate's validity")
		}
		if now.Before(m.ThisUpdate) || now.After(m.NextUpdate) {
			return nil, fmt.Errorf("manifest %s is current from %s to %s, not at %s", m.Number,
				m.ThisUpdate.Format(time.RFC3339), m.NextUpdate.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		return m, nil
	case so.ContentType.Equal(OIDContentASPA):
		a, err := ParseASPA(so.Content)
		if err != nil {
			return nil, err
		}
		if !ee.IP.Empty() {
			return nil, errors.New("ASPA EE certificate holds IP resources")
		}
		if !containsAS(res.AS.Ranges, ASRange{a.CustomerASID, a.CustomerASID}) {
			return nil, fmt.Errorf("%w: customer AS%d is not within the EE certificate's resources", ErrOverclaim, a.CustomerASID)
		}
		return a, nil
	case so.ContentType.Equal(oidContentGBR):
		if !onlyInherits(ee) {
			return nil, errors.New("Ghostbusters EE certificate does not only inherit resources")
		}
		if err := checkVCard(so.Content); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// onlyInherits reports whether r lists no explicit resources.
func onlyInherits(r Resources) bool {
	return len(r.IP.Ranges) == 0 && len(r.AS.Ranges) == 0
}

// CheckFiles checks every file m lists against files, keyed by file name:
// present, with the listed SHA-256. Files that m does not list are ignored.
// The error joins one error per missing or mismatching file.
func (m Manifest) CheckFiles(files map[string][]byte) error {
	var errs []error
	for _, f := range m.Files {
		data, ok := files[f.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("manifest %s: file %q is missing", m.Number, f.Name))
		case sha256.Sum256(data) != f.Hash:
			errs = append(errs, fmt.Errorf("manifest %s: file %q does not match its hash", m.Number, f.Name))
		}
	}
	return errors.Join(errs...)
}
