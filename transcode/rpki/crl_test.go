package rpki

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"testing"
	"time"
)

func TestIssueCRL(t *testing.T) {
	r := buildTestRepo(t, testNow)
	ca, err := x509.ParseCertificate(r.Objects[testBase+"ta/ca.cer"])
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(r.Objects[testBase+"ca/ca.crl"])
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Errorf("signature: %v", err)
	}
	if crl.Number.Cmp(big.NewInt(1)) != 0 || !bytes.Equal(crl.AuthorityKeyId, ca.SubjectKeyId) {
		t.Errorf("got number %s AKI %x, want 1 and %x", crl.Number, crl.AuthorityKeyId, ca.SubjectKeyId)
	}
	if len(crl.Extensions) != 2 {
		t.Errorf("got %d extensions, want 2 (AKI, CRL number)", len(crl.Extensions))
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Int64() != 99 {
		t.Errorf("got revoked %+v, want serial 99", crl.RevokedCertificateEntries)
	}
	if !crl.ThisUpdate.Equal(testNow.Add(-time.Hour)) || !crl.NextUpdate.Equal(testNow.Add(24*time.Hour)) {
		t.Errorf("got thisUpdate %s nextUpdate %s", crl.ThisUpdate, crl.NextUpdate)
	}
}

func TestIssueCRLSortsRevoked(t *testing.T) {
	key := testKey(t, "ca")
	iss := Issuer{Name: []byte{0x30, 0}, KeyID: []byte{1, 2}, Key: key}
	spec := CRLSpec{Number: big.NewInt(5), ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour), Revoked: []Revoked{
		{Serial: big.NewInt(30), Time: testNow}, {Serial: big.NewInt(4), Time: testNow}, {Serial: big.NewInt(12), Time: testNow},
	}}
	der, err := IssueCRL(spec, iss)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range crl.RevokedCertificateEntries {
		got = append(got, e.SerialNumber.Int64())
	}
	if len(got) != 3 || got[0] != 4 || got[1] != 12 || got[2] != 30 {
		t.Errorf("got serials %v, want [4 12 30]", got)
	}
	spec.NextUpdate = spec.ThisUpdate
	if _, err := IssueCRL(spec, iss); err == nil {
		t.Errorf("empty CRL validity: got no error")
	}
}
