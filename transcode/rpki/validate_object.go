package rpki

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"path"
	"strings"
	"time"
)

// issuerContext is what the objects of one publication point are checked
// against: the CA certificate (resources resolved), the URI of its
// current CRL, verified, and the CRL's revocation test.
type issuerContext struct {
	ca *Cert
	// crlURI is the CRL every certificate of the point must name in its
	// CRLDP; "" skips that check (single objects outside a tree).
	crlURI  string
	revoked func(*big.Int) bool
	now     time.Time
	// key is issuerKey of the point, for the object memo.
	key [sha256.Size]byte
}

// objectKind is the kind of a file by its name.
type objectKind int

const (
	kindOther objectKind = iota
	kindCert
	kindROA
	kindASPA
	kindGBR
	kindRouter // a BGPsec router certificate: not processed
)

// objectOutcome is what checking one object gave.
type objectOutcome struct {
	kind   objectKind
	err    error
	window window
	cert   *Cert // kindCert: the CA certificate, resources resolved
	vrps   []VRPOutput
	aspa   *ASPAOutput
	// serial is the serial of the certificate, or of the EE certificate
	// of a signed object, for the revocation check.
	serial *big.Int
}

// objKey is what the outcome of one object depends on besides the CRL
// and the time: the issuer (issuerKey), its kind by its name's extension
// and its content. It is small and holds no pointer: the memo keeps one
// per object of the tree, in its map and in the results of the points
// (on large, 390,000 of them: 72 bytes each instead of 128 with two
// strings).
type objKey struct {
	issuer [sha256.Size]byte
	kind   objectKind
	obj    [sha256.Size]byte
}

// issuerKey hashes what an object's outcome depends on in its issuer: the
// certificate and its resolved resources (as in ppKey) and the CRL its
// certificates must name.
func issuerKey(pk ppKey, crlURI string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(pk.ca[:])
	h.Write(pk.res[:])
	h.Write([]byte(crlURI))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// kindOf returns the kind of the object uri by its name's extension, as
// check tells them apart (a router certificate is a kindCert here).
func kindOf(uri string) objectKind {
	switch strings.ToLower(path.Ext(uri)) {
	case ".cer":
		return kindCert
	case ".roa":
		return kindROA
	case ".asa":
		return kindASPA
	case ".gbr":
		return kindGBR
	}
	return kindOther
}

// checkObject checks one object of a publication point, reusing the
// outcome of an earlier run for the same issuer and bytes while its time
// window holds: a publication point whose manifest and CRL change each
// serial (they do) then costs signatures only for its new objects. The
// outcome is computed as if nothing were revoked and revocation is
// applied afterwards, so that a new CRL does not invalidate the memo.
func (r *run) checkObject(ic *issuerContext, uri string, data []byte) (objectOutcome, objKey) {
	k := objKey{issuer: ic.key, kind: kindOf(uri), obj: sha256.Sum256(data)}
	o, ok := r.v.objects[k]
	if !ok || !o.window.contains(r.now) {
		unrevoked := *ic
		unrevoked.revoked = func(*big.Int) bool { return false }
		o = unrevoked.check(uri, data)
	}
	r.mu.Lock()
	r.objects[k] = o
	r.mu.Unlock()
	if o.err == nil && o.serial != nil && ic.revoked(o.serial) {
		err := fmt.Errorf("serial %s is revoked", o.serial)
		if o.kind != kindCert && o.kind != kindRouter {
			err = fmt.Errorf("EE certificate: %w", err)
		}
		return objectOutcome{kind: o.kind, err: err, window: o.window, serial: o.serial}, k
	}
	return o, k
}

// check checks the object uri with content data, issued by ic.ca. Files
// of other types (.mft, .tak, unknown) are left alone, as rpki-client does.
func (ic *issuerContext) check(uri string, data []byte) objectOutcome {
	var o objectOutcome
	switch strings.ToLower(path.Ext(uri)) {
	case ".cer":
		o.kind = kindCert
		o.cert, o.serial, o.err = ic.checkCert(data, &o.window)
		if o.err == nil && o.cert == nil {
			o.kind = kindRouter
		}
	case ".roa":
		o.kind = kindROA
		var content any
		var ee *Cert
		content, ee, o.err = ic.checkSigned(data, OIDContentROA, &o.window)
		if o.err == nil {
			o.serial = ee.Serial
			roa := content.(ROA)
			for _, p := range roa.Prefixes {
				o.vrps = append(o.vrps, VRPOutput{VRP: VRP{ASN: roa.ASID, Prefix: p.Prefix, MaxLength: p.MaxLength}, Expires: ee.NotAfter})
			}
		}
	case ".asa":
		o.kind = kindASPA
		var content any
		var ee *Cert
		content, ee, o.err = ic.checkSigned(data, OIDContentASPA, &o.window)
		if o.err == nil {
			o.serial = ee.Serial
			a := content.(ASPA)
			o.aspa = &ASPAOutput{CustomerASID: a.CustomerASID, Providers: a.Providers, Expires: ee.NotAfter}
		}
	case ".gbr":
		o.kind = kindGBR
		var ee *Cert
		_, ee, o.err = ic.checkSigned(data, oidContentGBR, &o.window)
		if o.err == nil {
			o.serial = ee.Serial
		}
	}
	return o
}

// checkCert checks a certificate issued by the CA: a CA certificate is
// returned with its resources resolved; a BGPsec router certificate (an
// EE certificate published alone) gives nil, nil.
func (ic *issuerContext) checkCert(data []byte, w *window) (*Cert, *big.Int, error) {
	// A CA certificate outlives the run (the memo, the results of the
	// points, Result.Points) and a Cert refers to its DER: it gets bytes
	// of its own, so that what a Validator keeps never holds on to the
	// Source's buffers (proxy/validate hands out views of the cache's).
	c, err := ParseCert(bytes.Clone(data))
	if err != nil {
		return nil, nil, err
	}
	w.narrow(c.NotBefore, c.NotAfter, ic.now)
	if !c.IsCA {
		return nil, nil, nil
	}
	if c.SelfSigned {
		return nil, nil, errors.New("a self-signed certificate below a trust anchor")
	}
	if ic.crlURI != "" && c.CRL != ic.crlURI {
		return nil, nil, fmt.Errorf("CRLDP %s is not the CRL %s of the issuer's publication point", c.CRL, ic.crlURI)
	}
	res, err := c.verifyIssued(ic.ca, ic.revoked, ic.now)
	if err != nil {
		return nil, nil, err
	}
	child := *c
	child.Resources = res
	return &child, c.Serial, nil
}

// checkSigned checks a signed object of content type want: the CMS, its
// EE certificate against the CA, the content by type. It returns the
// content (ROA, ASPA, Manifest, or nil) and the EE certificate.
func (ic *issuerContext) checkSigned(data []byte, want asn1.ObjectIdentifier, w *window) (any, *Cert, error) {
	so, err := ParseSignedObject(data)
	if err != nil {
		return nil, nil, err
	}
	w.narrow(so.EE.NotBefore, so.EE.NotAfter, ic.now)
	if !want.Equal(so.ContentType) {
		return nil, nil, fmt.Errorf("content type %v does not match the file name", so.ContentType)
	}
	if ic.crlURI != "" && so.EE.CRL != ic.crlURI {
		return nil, nil, fmt.Errorf("EE certificate: CRLDP %s is not the CRL %s of the issuer's publication point", so.EE.CRL, ic.crlURI)
	}
	content, err := so.verifyIssued(ic.ca, ic.revoked, ic.now)
	if err != nil {
		return nil, nil, err
	}
	return content, so.EE, nil
}
