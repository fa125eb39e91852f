package rpki

import (
	"crypto/rsa"
	"math/big"
	"net/netip"
	"path"
	"sync"
	"testing"
	"time"
)

// testRepo is a small repository: TA -> CA with a ROA and an ASPA, a
// manifest and a CRL per CA. Objects maps rsync URIs to DER.
type testRepo struct {
	TAL     []byte
	Objects map[string][]byte
	Order   []string // URIs in creation order
}

// testKeys caches derived keys across the tests of one run: deriving a
// key takes tens of milliseconds.
var testKeys struct {
	sync.Mutex
	m map[string]*rsa.PrivateKey
}

func testKey(t testing.TB, label string) *rsa.PrivateKey {
	t.Helper()
	testKeys.Lock()
	defer testKeys.Unlock()
	if k, ok := testKeys.m[label]; ok {
		return k
	}
	k, err := DeriveKey([]byte("rpki-test-seed"), label)
	if err != nil {
		t.Fatal(err)
	}
	if testKeys.m == nil {
		testKeys.m = map[string]*rsa.PrivateKey{}
	}
	testKeys.m[label] = k
	return k
}

const testBase = "rsync://localhost/repo/"

// buildTestRepo builds the test repository valid around now.
func buildTestRepo(t testing.TB, now time.Time) *testRepo {
	t.Helper()
	r := &testRepo{Objects: map[string][]byte{}}
	put := func(uri string) func([]byte, error) []byte {
		return func(der []byte, err error) []byte {
			t.Helper()
			if err != nil {
				t.Fatalf("build %s: %v", uri, err)
			}
			r.Objects[uri] = der
			r.Order = append(r.Order, uri)
			return der
		}
	}
	notBefore, notAfter := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	taKey, caKey := testKey(t, "ta"), testKey(t, "ca")

	taURI := testBase + "ta.cer"
	taRepo := testBase + "ta/"
	caRepo := testBase + "ca/"
	taRes := Resources{
		IP: IPResources{Ranges: []IPRange{
			PrefixRange(netip.MustParsePrefix("10.0.0.0/8")),
			PrefixRange(netip.MustParsePrefix("192.168.0.0/16")),
			PrefixRange(netip.MustParsePrefix("2001:db8::/32")),
		}},
		AS: ASResources{Ranges: []ASRange{{64496, 64511}, {65000, 65100}}},
	}
	taDER := put(taURI)(IssueTA(CertSpec{
		Serial: big.NewInt(1), Subject: "test-ta", NotBefore: notBefore, NotAfter: notAfter.Add(365 * 24 * time.Hour),
		CA: true, Resources: taRes, CARepository: taRepo, Manifest: taRepo + "ta.mft",
	}, taKey))
	ta, err := NewIssuer(taDER, taKey)
	if err != nil {
		t.Fatal(err)
	}
	r.TAL, err = TAL([]string{taURI}, &taKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	caRes := Resources{
		IP: IPResources{Ranges: []IPRange{
			PrefixRange(netip.MustParsePrefix("10.1.0.0/16")),
			{netip.MustParseAddr("10.2.0.0"), netip.MustParseAddr("10.2.3.255")},
			PrefixRange(netip.MustParsePrefix("2001:db8:1::/48")),
		}},
		AS: ASResources{Ranges: []ASRange{{64496, 64500}}},
	}
	caDER := put(taRepo + "ca.cer")(IssueCert(CertSpec{
		Serial: big.NewInt(2), Subject: "test-ca", NotBefore: notBefore, NotAfter: notAfter,
		PublicKey: &caKey.PublicKey, CA: true, Resources: caRes,
		CRL: taRepo + "ta.crl", IssuerCert: taURI,
		CARepository: caRepo, Manifest: caRepo + "ca.mft",
	}, ta))
	ca, err := NewIssuer(caDER, caKey)
	if err != nil {
		t.Fatal(err)
	}

	serial := int64(10)
	sign := func(iss Issuer, crlURI, issuerURI, uri, label string, res Resources, ct []int, content []byte, nb, na time.Time) []byte {
		t.Helper()
		serial++
		key := testKey(t, label)
		ee, err := IssueCert(CertSpec{
			Serial: big.NewInt(serial), Subject: label, NotBefore: nb, NotAfter: na,
			PublicKey: &key.PublicKey, Resources: res,
			CRL: crlURI, IssuerCert: issuerURI, SignedObject: uri,
		}, iss)
		if err != nil {
			t.Fatalf("issue EE for %s: %v", uri, err)
		}
		return put(uri)(SignObject(ct, content, ee, key, nb))
	}

	// CA publication point: ROA, ASPA, CRL, manifest.
	roa := ROA{ASID: 64496, Prefixes: []ROAPrefix{
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), MaxLength: 56},
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MaxLength: 24},
		{Prefix: netip.MustParsePrefix("10.2.0.0/23")},
	}}
	roaDER, err := roa.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sign(ca, caRepo+"ca.crl", taRepo+"ca.cer", caRepo+"AS64496.roa", "ee-roa", roa.Resources(), OIDContentROA, roaDER, notBefore, notAfter)
	aspa := ASPA{CustomerASID: 64497, Providers: []ASPAProvider{{ASID: 65001}, {ASID: 64999, AFI: 1}}}
	aspaDER, err := aspa.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sign(ca, caRepo+"ca.crl", taRepo+"ca.cer", caRepo+"AS64497.asa", "ee-aspa", aspa.Resources(), OIDContentASPA, aspaDER, notBefore, notAfter)
	put(caRepo + "ca.crl")(IssueCRL(CRLSpec{
		Number: big.NewInt(1), ThisUpdate: notBefore, NextUpdate: now.Add(24 * time.Hour),
		Revoked: []Revoked{{Serial: big.NewInt(99), Time: notBefore}},
	}, ca))
	r.manifest(t, ca, caRepo, "ca.mft", caRepo+"ca.crl", taRepo+"ca.cer", caRes, sign, notBefore, now.Add(24*time.Hour))

	// TA publication point: CRL, manifest.
	put(taRepo + "ta.crl")(IssueCRL(CRLSpec{Number: big.NewInt(1), ThisUpdate: notBefore, NextUpdate: now.Add(24 * time.Hour)}, ta))
	r.manifest(t, ta, taRepo, "ta.mft", taRepo+"ta.crl", taURI, taRes, sign, notBefore, now.Add(24*time.Hour))
	return r
}

type signFunc func(iss Issuer, crlURI, issuerURI, uri, label string, res Resources, ct []int, content []byte, nb, na time.Time) []byte

func (r *testRepo) manifest(t testing.TB, iss Issuer, repo, name, crlURI, issuerURI string, caRes Resources, sign signFunc, thisUpdate, nextUpdate time.Time) {
	t.Helper()
	m := Manifest{Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, uri := range r.Order {
		if dir, file := path.Split(uri); dir == repo {
			m.Files = append(m.Files, NewFileHash(file, r.Objects[uri]))
		}
	}
	der, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sign(iss, crlURI, issuerURI, repo+name, "ee-"+name, caRes.Inherited(), OIDContentManifest, der, thisUpdate, nextUpdate)
}
