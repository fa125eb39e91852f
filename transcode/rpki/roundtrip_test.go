package rpki

import (
	"bytes"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBuiltRepoVerifies validates the repository made by the builders of
// this package as a relying party would, from the TA down.
func TestBuiltRepoVerifies(t *testing.T) {
	r := buildTestRepo(t, testNow)
	res := walkRepo(t, r.Objects[testBase+"ta.cer"], r.Objects, testNow)
	want := slices.Clone(wantVRPs)
	slices.Sort(want)
	if !slices.Equal(res.VRPs, want) {
		t.Errorf("got VRPs %v, want %v", res.VRPs, want)
	}
	if want := []string{"AS64497:AS64999,AS65001"}; !slices.Equal(res.ASPAs, want) {
		t.Errorf("got ASPAs %v, want %v", res.ASPAs, want)
	}
	for _, uri := range r.Order {
		if !res.Visited[uri] && uri != testBase+"ta.cer" {
			t.Errorf("%s not reached from the TA", uri)
		}
	}
}

// builtCA returns the parsed TA-issued CA of buildTestRepo with its
// resources resolved, its CRL, and an Issuer for it.
func builtCA(t testing.TB, r *testRepo) (*Cert, *CRL, Issuer) {
	t.Helper()
	ta, err := ParseCert(r.Objects[testBase+"ta.cer"])
	if err != nil {
		t.Fatal(err)
	}
	taCRL, err := ParseCRL(r.Objects[testBase+"ta/ta.crl"])
	if err != nil {
		t.Fatal(err)
	}
	caDER := r.Objects[testBase+"ta/ca.cer"]
	ca, err := ParseCert(caDER)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Resources, err = ca.Verify(ta, taCRL, testNow); err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(r.Objects[testBase+"ca/ca.crl"])
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(caDER, testKey(t, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return ca, crl, iss
}

// signROA issues an EE holding eeRes under iss and signs roa with it.
func signROA(t *testing.T, iss Issuer, serial int64, eeRes Resources, roa ROA) []byte {
	t.Helper()
	key := testKey(t, "ee-roa")
	ee, err := IssueCert(CertSpec{
		Serial: big.NewInt(serial), Subject: "ee-test", NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
		PublicKey: &key.PublicKey, Resources: eeRes,
		CRL: testBase + "ca/ca.crl", IssuerCert: testBase + "ta/ca.cer", SignedObject: testBase + "ca/test.roa",
	}, iss)
	if err != nil {
		t.Fatal(err)
	}
	content, err := roa.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	der, err := SignObject(OIDContentROA, content, ee, key, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestVerifyRejects checks that Verify names each fault of a signed object
// against its CA.
func TestVerifyRejects(t *testing.T) {
	r := buildTestRepo(t, testNow)
	ca, crl, iss := builtCA(t, r)
	roaURI := testBase + "ca/AS64496.roa"
	good, err := ParseSignedObject(r.Objects[roaURI])
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Verify(ca, crl, testNow); err != nil {
		t.Fatalf("the good ROA: %v", err)
	}
	ta, err := ParseCert(r.Objects[testBase+"ta.cer"])
	if err != nil {
		t.Fatal(err)
	}
	revoking, err := IssueCRL(CRLSpec{
		Number: big.NewInt(2), ThisUpdate: testNow.Add(-time.Hour), NextUpdate: testNow.Add(time.Hour),
		Revoked: []Revoked{{Serial: good.EE.Serial, Time: testNow.Add(-time.Minute)}},
	}, iss)
	if err != nil {
		t.Fatal(err)
	}
	revCRL, err := ParseCRL(revoking)
	if err != nil {
		t.Fatal(err)
	}
	p10 := PrefixRange(netip.MustParsePrefix("10.1.0.0/16"))
	outside := signROA(t, iss, 500, Resources{IP: IPResources{Ranges: []IPRange{p10}}},
		ROA{ASID: 64496, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/23")}}})
	overclaim := signROA(t, iss, 501, Resources{IP: IPResources{Ranges: []IPRange{PrefixRange(netip.MustParsePrefix("172.16.0.0/12"))}}},
		ROA{ASID: 64496, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("172.16.0.0/12")}}})

	for _, tt := range []struct {
		name   string
		der    []byte
		issuer *Cert
		crl    *CRL
		now    time.Time
		want   string
	}{
		{"wrong issuer", r.Objects[roaURI], ta, crl, testNow, "issuer name differs"},
		{"revoked", r.Objects[roaURI], ca, revCRL, testNow, "is revoked"},
		{"no CRL", r.Objects[roaURI], ca, nil, testNow, "no CRL"},
		{"before validity", r.Objects[roaURI], ca, crl, testNow.Add(-2 * time.Hour), "not at"},
		{"CRL stale", r.Objects[roaURI], ca, crl, testNow.Add(48 * time.Hour), "verify CRL 1: current from"},
		{"prefix outside EE", outside, ca, crl, testNow, "ROA prefix 10.2.0.0/23 is not within"},
		{"EE overclaims", overclaim, ca, crl, testNow, "IPv4 range 172.16.0.0/12 is not within the issuer's resources"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			so, err := ParseSignedObject(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			err = so.Verify(tt.issuer, tt.crl, tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}

	t.Run("tampered content", func(t *testing.T) {
		roa, err := ParseROA(good.Content)
		if err != nil {
			t.Fatal(err)
		}
		content, _ := roa.Marshal()
		der := slices.Clone(r.Objects[roaURI])
		i := bytes.Index(der, content)
		if i < 0 {
			t.Fatal("eContent not found")
		}
		der[i+len(content)-1] ^= 1
		if _, err := ParseSignedObject(der); err == nil || !strings.Contains(err.Error(), "message-digest") {
			t.Errorf("got %v, want a message-digest error", err)
		}
	})
	t.Run("tampered signature", func(t *testing.T) {
		der := slices.Clone(r.Objects[roaURI])
		der[len(der)-1] ^= 1
		if _, err := ParseSignedObject(der); err == nil || !strings.Contains(err.Error(), "signature") {
			t.Errorf("got %v, want a signature error", err)
		}
	})
	t.Run("manifest hash", func(t *testing.T) {
		so, err := ParseSignedObject(r.Objects[testBase+"ca/ca.mft"])
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(so.Content)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, f := range m.Files {
			files[f.Name] = r.Objects[testBase+"ca/"+f.Name]
		}
		if err := m.CheckFiles(files); err != nil {
			t.Fatal(err)
		}
		files["AS64496.roa"] = append(slices.Clone(files["AS64496.roa"]), 0)
		delete(files, "ca.crl")
		err = m.CheckFiles(files)
		if err == nil || !strings.Contains(err.Error(), `"AS64496.roa" does not match`) || !strings.Contains(err.Error(), `"ca.crl" is missing`) {
			t.Errorf("got %v, want a mismatch and a missing file", err)
		}
	})
}

// TestParsedMatchesBuilt checks that the parsers give back what the
// builders were given.
func TestParsedMatchesBuilt(t *testing.T) {
	roa := ROA{ASID: 64496, Prefixes: []ROAPrefix{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MaxLength: 24},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), MaxLength: 48},
	}}
	der, err := roa.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseROA(der)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Prefixes, roa.Prefixes) || got.ASID != roa.ASID {
		t.Errorf("ROA: got %+v, want %+v", got, roa)
	}
	for _, v := range []int{0, 1} {
		a := ASPA{Version: v, CustomerASID: 64497, Providers: []ASPAProvider{{ASID: 64999}, {ASID: 65001}}}
		if v == 0 {
			a.Providers[0].AFI = 1
		}
		der, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseASPA(der)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != a.Version || got.CustomerASID != a.CustomerASID || !slices.Equal(got.Providers, a.Providers) {
			t.Errorf("ASPA v%d: got %+v, want %+v", v, got, a)
		}
	}
	m := Manifest{Number: big.NewInt(7), ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour),
		Files: []FileHash{NewFileHash("a.roa", []byte("a")), NewFileHash("b.crl", []byte("b"))}}
	der, err = m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	gm, err := ParseManifest(der)
	if err != nil {
		t.Fatal(err)
	}
	if gm.Number.Cmp(m.Number) != 0 || !gm.ThisUpdate.Equal(m.ThisUpdate) || !gm.NextUpdate.Equal(m.NextUpdate) || !slices.Equal(gm.Files, m.Files) {
		t.Errorf("manifest: got %+v, want %+v", gm, m)
	}
}

// BenchmarkParseVerifyROA parses and verifies one ROA against its CA.
func BenchmarkParseVerifyROA(b *testing.B) {
	r := buildTestRepo(b, testNow)
	ca, crl, _ := builtCA(b, r)
	der := r.Objects[testBase+"ca/AS64496.roa"]
	b.ReportAllocs()
	b.SetBytes(int64(len(der)))
	for b.Loop() {
		so, err := ParseSignedObject(der)
		if err != nil {
			b.Fatal(err)
		}
		if err := so.Verify(ca, crl, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
