package rpki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"slices"
	"testing"
	"time"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestIssuedCertificates(t *testing.T) {
	r := buildTestRepo(t, testNow)
	taDER := r.Objects[testBase+"ta.cer"]
	caDER := r.Objects[testBase+"ta/ca.cer"]
	ta, err := x509.ParseCertificate(taDER)
	if err != nil {
		t.Fatalf("parse TA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA: %v", err)
	}
	tests := []struct {
		name     string
		cert     *x509.Certificate
		parent   *x509.Certificate
		exts     []asn1.ObjectIdentifier // in order
		critical []bool
		usage    x509.KeyUsage
	}{
		{
			name: "TA", cert: ta, parent: ta,
			exts:     []asn1.ObjectIdentifier{oidExtBasicConstraints, oidExtSubjectKeyID, oidExtKeyUsage, oidExtSubjectInfo, oidExtCertPolicies, OIDIPAddrBlocks, OIDASIdentifiers},
			critical: []bool{true, false, true, false, true, true, true},
			usage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		},
		{
			name: "CA", cert: ca, parent: ta,
			exts:     []asn1.ObjectIdentifier{oidExtBasicConstraints, oidExtSubjectKeyID, oidExtAuthorityKeyID, oidExtKeyUsage, oidExtCRLDistPoints, oidExtAuthorityInfo, oidExtSubjectInfo, oidExtCertPolicies, OIDIPAddrBlocks, OIDASIdentifiers},
			critical: []bool{true, false, false, true, false, false, false, true, true, true},
			usage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cert
			if err := c.CheckSignatureFrom(tt.parent); err != nil {
				t.Errorf("signature: %v", err)
			}
			var oids []asn1.ObjectIdentifier
			var crit []bool
			for _, e := range c.Extensions {
				oids = append(oids, e.Id)
				crit = append(crit, e.Critical)
			}
			if !slices.EqualFunc(oids, tt.exts, asn1.ObjectIdentifier.Equal) || !slices.Equal(crit, tt.critical) {
				t.Errorf("got extensions %v critical %v, want %v %v", oids, crit, tt.exts, tt.critical)
			}
			if c.Version != 3 || !c.IsCA || c.KeyUsage != tt.usage {
				t.Errorf("got version %d CA %v usage %b, want 3 true %b", c.Version, c.IsCA, c.KeyUsage, tt.usage)
			}
			if !bytes.Equal(c.RawIssuer, tt.parent.RawSubject) {
				t.Errorf("issuer %x does not match parent subject %x", c.RawIssuer, tt.parent.RawSubject)
			}
			if len(c.Subject.Names) != 1 {
				t.Errorf("got subject %v, want a CommonName only", c.Subject)
			}
			if len(c.PolicyIdentifiers) != 1 || !c.PolicyIdentifiers[0].Equal(oidPolicyRPKI) {
				t.Errorf("got policies %v, want %v", c.PolicyIdentifiers, oidPolicyRPKI)
			}
		})
	}

	t.Run("CA URIs and keys", func(t *testing.T) {
		if !slices.Equal(ca.CRLDistributionPoints, []string{testBase + "ta/ta.crl"}) {
			t.Errorf("got CRLDP %q", ca.CRLDistributionPoints)
		}
		if !slices.Equal(ca.IssuingCertificateURL, []string{testBase + "ta.cer"}) {
			t.Errorf("got AIA %q", ca.IssuingCertificateURL)
		}
		if !bytes.Equal(ca.AuthorityKeyId, ta.SubjectKeyId) || len(ta.AuthorityKeyId) != 0 {
			t.Errorf("got CA AKI %x TA AKI %x, want %x and none", ca.AuthorityKeyId, ta.AuthorityKeyId, ta.SubjectKeyId)
		}
		if !bytes.Equal(ca.SubjectKeyId, KeyID(&testKey(t, "ca").PublicKey)) {
			t.Errorf("got SKI %x", ca.SubjectKeyId)
		}
		if got, want := ca.NotBefore, testNow.Add(-time.Hour); !got.Equal(want) {
			t.Errorf("got notBefore %s, want %s", got, want)
		}
	})

	t.Run("CA resources", func(t *testing.T) {
		var ipDER, asDER []byte
		for _, e := range ca.Extensions {
			switch {
			case e.Id.Equal(OIDIPAddrBlocks):
				ipDER = e.Value
			case e.Id.Equal(OIDASIdentifiers):
				asDER = e.Value
			}
		}
		ip, err := ParseIPResources(ipDER)
		if err != nil {
			t.Fatal(err)
		}
		// 10.1.0.0/16 and 10.2.0.0-10.2.3.255 are adjacent: merged.
		want := []IPRange{rng("10.1.0.0", "10.2.3.255"), pr("2001:db8:1::/48")}
		if !slices.Equal(ip.Ranges, want) {
			t.Errorf("got IP %v, want %v", ip.Ranges, want)
		}
		as, err := ParseASResources(asDER)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(as.Ranges, []ASRange{{64496, 64500}}) {
			t.Errorf("got AS %v", as.Ranges)
		}
	})
}

func TestIssueEE(t *testing.T) {
	caKey := testKey(t, "ca")
	taDER, err := IssueTA(CertSpec{
		Serial: big.NewInt(1), Subject: "ta", NotBefore: testNow, NotAfter: testNow.Add(time.Hour), CA: true,
		Resources:    Resources{AS: ASResources{Ranges: []ASRange{{1, 10}}}},
		CARepository: "rsync://h/r/", Manifest: "rsync://h/r/m.mft",
	}, caKey)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(taDER, caKey)
	if err != nil {
		t.Fatal(err)
	}
	eeKey := testKey(t, "ee-roa")
	der, err := IssueCert(CertSpec{
		Serial: big.NewInt(7), Subject: "ee", NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
		PublicKey: &eeKey.PublicKey, Resources: Resources{AS: ASResources{Inherit: true}},
		CRL: "rsync://h/r/c.crl", IssuerCert: "rsync://h/ta.cer", SignedObject: "rsync://h/r/o.asa",
	}, iss)
	if err != nil {
		t.Fatal(err)
	}
	ee, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if ee.IsCA || ee.BasicConstraintsValid || ee.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("got CA %v basic constraints %v usage %b, want an EE with digitalSignature", ee.IsCA, ee.BasicConstraintsValid, ee.KeyUsage)
	}
	for _, e := range ee.Extensions {
		if e.Id.Equal(OIDIPAddrBlocks) {
			t.Errorf("EE has an IP extension, want none")
		}
	}
}

func TestIssueCertErrors(t *testing.T) {
	key := testKey(t, "ca")
	base := CertSpec{
		Serial: big.NewInt(1), Subject: "x", NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
		PublicKey: &key.PublicKey, CA: true, Resources: Resources{AS: ASResources{Ranges: []ASRange{{1, 1}}}},
		CRL: "rsync://h/c.crl", IssuerCert: "rsync://h/i.cer", CARepository: "rsync://h/r/", Manifest: "rsync://h/r/m.mft",
	}
	iss := Issuer{Name: []byte{0x30, 0}, KeyID: []byte{1}, Key: key}
	tests := []struct {
		name   string
		mutate func(*CertSpec)
	}{
		{"zero serial", func(s *CertSpec) { s.Serial = big.NewInt(0) }},
		{"nil serial", func(s *CertSpec) { s.Serial = nil }},
		{"empty validity", func(s *CertSpec) { s.NotAfter = s.NotBefore }},
		{"non printable subject", func(s *CertSpec) { s.Subject = "a_b" }},
		{"no resources", func(s *CertSpec) { s.Resources = Resources{} }},
		{"https CRL", func(s *CertSpec) { s.CRL = "https://h/c.crl" }},
		{"CA without manifest", func(s *CertSpec) { s.Manifest = "" }},
		{"repository without slash", func(s *CertSpec) { s.CARepository = "rsync://h/r" }},
		{"EE without signed object", func(s *CertSpec) { s.CA = false; s.CARepository = ""; s.Manifest = "" }},
		{"rsync notify", func(s *CertSpec) { s.Notify = "rsync://h/n.xml" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base
			tt.mutate(&spec)
			if _, err := IssueCert(spec, iss); err == nil {
				t.Errorf("got no error")
			}
		})
	}
}

func TestRepoDeterministic(t *testing.T) {
	a := buildTestRepo(t, testNow)
	b := buildTestRepo(t, testNow)
	if !bytes.Equal(a.TAL, b.TAL) {
		t.Errorf("TAL differs between two builds")
	}
	if !slices.Equal(a.Order, b.Order) {
		t.Fatalf("got objects %v then %v", a.Order, b.Order)
	}
	for _, uri := range a.Order {
		if !bytes.Equal(a.Objects[uri], b.Objects[uri]) {
			t.Errorf("%s differs between two builds", uri)
		}
	}
}
