package rpki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// signedParts are the fields of a signed object a test looks at.
type signedParts struct {
	contentType asn1.ObjectIdentifier
	content     []byte
	cert        []byte
	sid         []byte
	attrs       []byte // the signed attributes re-tagged as SET
	sig         []byte
}

// splitSigned walks the RFC 6488 structure strictly; it fails on anything
// SignObject does not produce.
func splitSigned(t *testing.T, der []byte) signedParts {
	t.Helper()
	var p signedParts
	var ci, sd, digests, eci, ec, certs, sis, si, attrs cryptobyte.String
	var ctype, sdType asn1.ObjectIdentifier
	var v, siv int
	in := cryptobyte.String(der)
	ok := in.ReadASN1(&ci, cbasn1.SEQUENCE) && in.Empty() &&
		ci.ReadASN1ObjectIdentifier(&sdType) && sdType.Equal(oidSignedData) &&
		ci.ReadASN1(&sd, tagExplicit0) && sd.ReadASN1(&sd, cbasn1.SEQUENCE) &&
		sd.ReadASN1Integer(&v) && v == 3 &&
		sd.ReadASN1(&digests, cbasn1.SET) &&
		sd.ReadASN1(&eci, cbasn1.SEQUENCE) && eci.ReadASN1ObjectIdentifier(&ctype) &&
		eci.ReadASN1(&ec, tagExplicit0) && ec.ReadASN1((*cryptobyte.String)(&p.content), cbasn1.OCTET_STRING) &&
		sd.ReadASN1(&certs, tagExplicit0) &&
		sd.ReadASN1(&sis, cbasn1.SET) && sd.Empty() &&
		sis.ReadASN1(&si, cbasn1.SEQUENCE) && sis.Empty() &&
		si.ReadASN1Integer(&siv) && siv == 3 &&
		si.ReadASN1((*cryptobyte.String)(&p.sid), tagImplicit0) &&
		si.SkipASN1(cbasn1.SEQUENCE) &&
		si.ReadASN1Element(&attrs, tagExplicit0) &&
		si.SkipASN1(cbasn1.SEQUENCE) &&
		si.ReadASN1((*cryptobyte.String)(&p.sig), cbasn1.OCTET_STRING) && si.Empty()
	if !ok {
		t.Fatalf("malformed signed object %x", der)
	}
	if !bytes.Equal(digests, []byte{0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}) {
		t.Errorf("got digestAlgorithms %x, want SHA-256 without parameters", []byte(digests))
	}
	p.contentType = ctype
	p.cert = certs
	p.attrs = append([]byte{0x31}, attrs[1:]...)
	return p
}

func TestSignObject(t *testing.T) {
	key := testKey(t, "ee-roa")
	content := []byte{0x30, 0x03, 0x02, 0x01, 0x05}
	ee := []byte{0x30, 0x00} // SignObject embeds the EE certificate as given
	tests := []struct {
		name  string
		at    time.Time
		attrs int
	}{
		{"with signing time", testNow, 3},
		{"without signing time", time.Time{}, 2},
		{"signing time after 2049", time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := SignObject(OIDContentROA, content, ee, key, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			p := splitSigned(t, der)
			if !p.contentType.Equal(OIDContentROA) || !bytes.Equal(p.content, content) || !bytes.Equal(p.cert, ee) {
				t.Errorf("got type %v content %x cert %x", p.contentType, p.content, p.cert)
			}
			if !bytes.Equal(p.sid, KeyID(&key.PublicKey)) {
				t.Errorf("got sid %x, want the SKI", p.sid)
			}
			d := sha256.Sum256(p.attrs)
			if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], p.sig); err != nil {
				t.Errorf("signature over signed attributes: %v", err)
			}
			// The attributes are a DER SET OF: sorted, with the digest.
			set := cryptobyte.String(p.attrs)
			var body cryptobyte.String
			set.ReadASN1(&body, cbasn1.SET)
			var prev []byte
			n := 0
			for !body.Empty() {
				var a cryptobyte.String
				if !body.ReadASN1Element(&a, cbasn1.SEQUENCE) {
					t.Fatalf("malformed attribute")
				}
				if prev != nil && bytes.Compare(prev, a) > 0 {
					t.Errorf("attributes not sorted: %x before %x", prev, []byte(a))
				}
				prev = a
				n++
			}
			if n != tt.attrs {
				t.Errorf("got %d signed attributes, want %d", n, tt.attrs)
			}
			md := sha256.Sum256(content)
			if !bytes.Contains(p.attrs, md[:]) {
				t.Errorf("message digest missing from signed attributes")
			}
		})
	}
}

func TestSignedROAVerifies(t *testing.T) {
	r := buildTestRepo(t, testNow)
	p := splitSigned(t, r.Objects[testBase+"ca/AS64496.roa"])
	ee, err := x509.ParseCertificate(p.cert)
	if err != nil {
		t.Fatalf("parse embedded EE: %v", err)
	}
	ca, err := x509.ParseCertificate(r.Objects[testBase+"ta/ca.cer"])
	if err != nil {
		t.Fatal(err)
	}
	if err := ee.CheckSignatureFrom(ca); err != nil {
		t.Errorf("EE signature: %v", err)
	}
	d := sha256.Sum256(p.attrs)
	if err := rsa.VerifyPKCS1v15(ee.PublicKey.(*rsa.PublicKey), crypto.SHA256, d[:], p.sig); err != nil {
		t.Errorf("object signature with the EE key: %v", err)
	}
	if !hasExtension(ee.Extensions, OIDIPAddrBlocks) {
		t.Errorf("EE of a ROA lacks its IP resources")
	}
}

func hasExtension(exts []pkix.Extension, oid asn1.ObjectIdentifier) bool {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// BenchmarkSignROA measures what one more ROA costs a repository
// generator with a key at hand: encode the ROA, issue its EE certificate,
// sign the CMS.
func BenchmarkSignROA(b *testing.B) {
	caKey := testKey(b, "ca")
	eeKey := testKey(b, "ee-roa")
	iss := Issuer{Name: []byte{0x30, 0x00}, KeyID: KeyID(&caKey.PublicKey), Key: caKey}
	roa := ROA{ASID: 64496, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MaxLength: 24}, {Prefix: netip.MustParsePrefix("2001:db8::/32")}}}
	b.ReportAllocs()
	serial := int64(0)
	for b.Loop() {
		serial++
		content, err := roa.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		ee, err := IssueCert(CertSpec{
			Serial: big.NewInt(serial), Subject: "ee", NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
			PublicKey: &eeKey.PublicKey, Resources: roa.Resources(),
			CRL: "rsync://h/r/c.crl", IssuerCert: "rsync://h/ca.cer", SignedObject: "rsync://h/r/a.roa",
		}, iss)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := SignObject(OIDContentROA, content, ee, eeKey, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
