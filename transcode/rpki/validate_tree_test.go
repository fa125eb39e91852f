package rpki

import (
	"context"
	"crypto/rsa"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// treeBuilder builds small signed trees for the validator's tests: a TA,
// CAs below it, ROAs, and per CA a CRL and a manifest written by publish.
type treeBuilder struct {
	t      testing.TB
	now    time.Time
	objs   MapSource
	serial int64
}

// tca is a CA of a treeBuilder tree.
type tca struct {
	name   string
	uri    string // where its certificate is published
	repo   string // its caRepository, ending in "/"
	key    *rsa.PrivateKey
	iss    Issuer
	res    Resources
	files  []string // names in repo, besides the CRL and the manifest
	number int64    // next manifest and CRL number
	// mftNext is the manifest's and CRL's nextUpdate (now + 1 day).
	mftNext time.Time
	// revoked lists the serials publish puts on the CRL.
	revoked []*big.Int
}

func newTreeBuilder(t testing.TB, now time.Time) *treeBuilder {
	return &treeBuilder{t: t, now: now, objs: MapSource{}, serial: 100}
}

func prefixes(ps ...string) []IPRange {
	var out []IPRange
	for _, p := range ps {
		out = append(out, PrefixRange(netip.MustParsePrefix(p)))
	}
	return out
}

func (b *treeBuilder) nextSerial() *big.Int { b.serial++; return big.NewInt(b.serial) }

// ta creates the trust anchor, published at rsync://localhost/t/ta.cer.
func (b *treeBuilder) ta(res Resources) (*tca, TrustAnchor) {
	b.t.Helper()
	key := testKey(b.t, "vt-ta")
	ca := &tca{name: "ta", uri: "rsync://localhost/t/ta.cer", repo: "rsync://localhost/t/ta/", key: key, res: res, number: 1, mftNext: b.now.Add(24 * time.Hour)}
	der, err := IssueTA(CertSpec{Serial: big.NewInt(1), Subject: "vt-ta", NotBefore: b.now.Add(-time.Hour), NotAfter: b.now.AddDate(5, 0, 0),
		CA: true, Resources: res, CARepository: ca.repo, Manifest: ca.repo + "ta.mft"}, key)
	if err != nil {
		b.t.Fatal(err)
	}
	b.objs[ca.uri] = der
	if ca.iss, err = NewIssuer(der, key); err != nil {
		b.t.Fatal(err)
	}
	talDER, err := TAL([]string{ca.uri}, &key.PublicKey)
	if err != nil {
		b.t.Fatal(err)
	}
	tal, err := ParseTAL(talDER)
	if err != nil {
		b.t.Fatal(err)
	}
	return ca, TrustAnchor{Name: "vt", TAL: tal}
}

// child issues a CA certificate named name.cer in parent's publication
// point; keyLabel picks its key, edit may change the spec.
func (b *treeBuilder) child(parent *tca, name, keyLabel string, res Resources, edit func(*CertSpec)) *tca {
	b.t.Helper()
	key := testKey(b.t, keyLabel)
	ca := &tca{name: name, uri: parent.repo + name + ".cer", repo: "rsync://localhost/t/" + name + "/", key: key, res: res, number: 1, mftNext: b.now.Add(24 * time.Hour)}
	spec := CertSpec{Serial: b.nextSerial(), Subject: name, NotBefore: b.now.Add(-time.Hour), NotAfter: b.now.AddDate(1, 0, 0),
		PublicKey: &key.PublicKey, CA: true, Resources: res, CRL: parent.repo + parent.name + ".crl", IssuerCert: parent.uri,
		CARepository: ca.repo, Manifest: ca.repo + name + ".mft"}
	if edit != nil {
		edit(&spec)
	}
	der, err := IssueCert(spec, parent.iss)
	if err != nil {
		b.t.Fatal(err)
	}
	b.put(parent, name+".cer", der)
	if ca.iss, err = NewIssuer(der, key); err != nil {
		b.t.Fatal(err)
	}
	return ca
}

func (b *treeBuilder) put(ca *tca, name string, der []byte) {
	b.objs[ca.repo+name] = der
	if !slices.Contains(ca.files, name) {
		ca.files = append(ca.files, name)
	}
}

// sign issues an EE certificate for resources res and signs content.
func (b *treeBuilder) sign(ca *tca, uri string, res Resources, ct []int, content []byte, nb, na time.Time) []byte {
	b.t.Helper()
	key := testKey(b.t, "vt-ee")
	ee, err := IssueCert(CertSpec{Serial: b.nextSerial(), Subject: "ee", NotBefore: nb, NotAfter: na, PublicKey: &key.PublicKey,
		Resources: res, CRL: ca.repo + ca.name + ".crl", IssuerCert: ca.uri, SignedObject: uri}, ca.iss)
	if err != nil {
		b.t.Fatal(err)
	}
	der, err := SignObject(ct, content, ee, key, nb)
	if err != nil {
		b.t.Fatal(err)
	}
	return der
}

// roa publishes a ROA; eeRes, when not nil, replaces the resources of its
// EE certificate (the ROA's own by default).
func (b *treeBuilder) roa(ca *tca, name string, r ROA, eeRes *Resources) {
	b.t.Helper()
	der, err := r.Marshal()
	if err != nil {
		b.t.Fatal(err)
	}
	res := r.Resources()
	if eeRes != nil {
		res = *eeRes
	}
	b.put(ca, name, b.sign(ca, ca.repo+name, res, OIDContentROA, der, b.now.Add(-time.Hour), b.now.AddDate(1, 0, 0)))
}

// publish writes ca's CRL and manifest, listing every file put so far.
func (b *treeBuilder) publish(ca *tca) {
	b.t.Helper()
	spec := CRLSpec{Number: big.NewInt(ca.number), ThisUpdate: b.now.Add(-time.Hour), NextUpdate: ca.mftNext}
	for _, s := range ca.revoked {
		spec.Revoked = append(spec.Revoked, Revoked{Serial: s, Time: b.now.Add(-time.Hour)})
	}
	crl, err := IssueCRL(spec, ca.iss)
	if err != nil {
		b.t.Fatal(err)
	}
	b.objs[ca.repo+ca.name+".crl"] = crl
	m := Manifest{Number: big.NewInt(ca.number), ThisUpdate: b.now.Add(-time.Hour), NextUpdate: ca.mftNext}
	m.Files = append(m.Files, NewFileHash(ca.name+".crl", crl))
	for _, f := range ca.files {
		m.Files = append(m.Files, NewFileHash(f, b.objs[ca.repo+f]))
	}
	der, err := m.Marshal()
	if err != nil {
		b.t.Fatal(err)
	}
	b.objs[ca.repo+ca.name+".mft"] = b.sign(ca, ca.repo+ca.name+".mft", ca.res.Inherited(), OIDContentManifest, der, m.ThisUpdate, m.NextUpdate)
	ca.number++
}

func (b *treeBuilder) validate(cfg Config, ta TrustAnchor) *Result {
	b.t.Helper()
	if cfg.Source == nil {
		cfg.Source = b.objs
	}
	v, err := NewValidator(cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	res, err := v.Validate(context.Background(), []TrustAnchor{ta}, b.now)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// caErr returns the error of the CA result for uri, failing when there is
// no such result.
func caErr(t testing.TB, res *Result, uri string) error {
	t.Helper()
	for _, ca := range res.CAs {
		if ca.URI == uri {
			return ca.Err
		}
	}
	t.Fatalf("no CA result for %s in %d results", uri, len(res.CAs))
	return nil
}

// problem returns the problem reported for uri, or nil.
func problem(res *Result, uri string) *ObjectError {
	for _, p := range res.Problems {
		if p.URI == uri {
			return p
		}
	}
	return nil
}

func vrpStrings(res *Result) []string {
	var out []string
	for _, v := range res.VRPs {
		out = append(out, v.String())
	}
	return out
}

var testRes = Resources{IP: IPResources{Ranges: prefixes("10.0.0.0/8", "2001:db8::/32")}, AS: ASResources{Ranges: []ASRange{{64496, 64511}}}}

// goodTree is a TA with two CAs, a and b, each with one ROA.
func goodTree(t testing.TB, now time.Time) (*treeBuilder, *tca, *tca, *tca, TrustAnchor) {
	b := newTreeBuilder(t, now)
	ta, anchor := b.ta(testRes)
	a := b.child(ta, "a", "vt-a", Resources{IP: IPResources{Ranges: prefixes("10.1.0.0/16")}}, nil)
	c := b.child(ta, "b", "vt-b", Resources{IP: IPResources{InheritV4: true, InheritV6: true}, AS: ASResources{Inherit: true}}, nil)
	b.roa(a, "a.roa", ROA{ASID: 64496, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), MaxLength: 24}}}, nil)
	b.roa(c, "b.roa", ROA{ASID: 64497, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("2001:db8::/32")}}}, nil)
	b.publish(a)
	b.publish(c)
	b.publish(ta)
	return b, ta, a, c, anchor
}

func TestValidateTree(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	wantGood := []string{"AS64496,10.1.0.0/16,24", "AS64497,2001:db8::/32,32"}

	t.Run("good", func(t *testing.T) {
		b, _, _, _, anchor := goodTree(t, now)
		res := b.validate(Config{}, anchor)
		if got := vrpStrings(res); !slices.Equal(got, wantGood) {
			t.Errorf("got %v, want %v", got, wantGood)
		}
		if len(res.Problems) != 0 || len(res.CAs) != 3 {
			t.Errorf("problems %v, %d CAs, want none and 3", res.Problems, len(res.CAs))
		}
	})

	type tcase struct {
		name string
		// build changes the good tree; it returns the URI whose CA result
		// or problem must carry an error matching want.
		build   func(b *treeBuilder, ta, a, c *tca) string
		cfg     Config
		want    string
		wantErr error
		vrps    []string
	}
	cases := []tcase{
		{
			name: "CA overclaims",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				x := b.child(ta, "x", "vt-x", Resources{IP: IPResources{Ranges: prefixes("11.0.0.0/8")}}, nil)
				b.publish(x)
				b.publish(ta)
				return x.uri
			},
			want: "IPv4 range 11.0.0.0/8 is not within the issuer's resources", wantErr: ErrOverclaim, vrps: wantGood,
		},
		{
			name: "ROA EE overclaims",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				res := Resources{IP: IPResources{Ranges: prefixes("10.2.0.0/16")}}
				b.roa(a, "over.roa", ROA{ASID: 64499, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}}}, &res)
				b.publish(a)
				b.publish(ta)
				return a.repo + "over.roa"
			},
			want: "not within the issuer's resources", wantErr: ErrOverclaim, vrps: wantGood,
		},
		{
			name: "ROA prefix beyond its EE",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				res := Resources{IP: IPResources{Ranges: prefixes("10.1.1.0/24")}}
				b.roa(a, "wide.roa", ROA{ASID: 64499, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}}, &res)
				b.publish(a)
				b.publish(ta)
				return a.repo + "wide.roa"
			},
			want: "ROA prefix 10.1.0.0/16 is not within the EE certificate's resources", wantErr: ErrOverclaim, vrps: wantGood,
		},
		{
			name: "malformed DER listed with its hash",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				b.put(a, "junk.roa", []byte{0x30, 0x82, 0xff, 0xff, 0x01})
				b.publish(a)
				b.publish(ta)
				return a.repo + "junk.roa"
			},
			want: "parse signed object", vrps: wantGood,
		},
		{
			name: "truncated certificate",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				der := b.objs[a.uri]
				b.put(ta, "cut.cer", der[:len(der)/2])
				b.publish(ta)
				return ta.repo + "cut.cer"
			},
			want: "parse certificate", vrps: wantGood,
		},
		{
			name: "listed file missing",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				delete(b.objs, a.repo+"a.roa")
				return a.uri
			},
			want: "a.roa is missing", vrps: wantGood[1:],
		},
		{
			name: "listed file changed",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				b.objs[c.repo+"b.roa"] = append([]byte(nil), b.objs[a.repo+"a.roa"]...)
				return c.uri
			},
			want: "b.roa does not match its hash", vrps: wantGood[:1],
		},
		{
			name: "stale manifest",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				a.mftNext = b.now.Add(-time.Minute)
				b.publish(a)
				b.publish(ta)
				return a.uri
			},
			want: "stale", wantErr: ErrStale, vrps: wantGood[1:],
		},
		{
			name: "revoked CA",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				crl, err := IssueCRL(CRLSpec{Number: big.NewInt(9), ThisUpdate: b.now.Add(-time.Hour), NextUpdate: b.now.Add(time.Hour),
					Revoked: []Revoked{{Serial: big.NewInt(101), Time: b.now.Add(-time.Hour)}}}, ta.iss)
				if err != nil {
					b.t.Fatal(err)
				}
				b.objs[ta.repo+"ta.crl"] = crl
				m := Manifest{Number: big.NewInt(9), ThisUpdate: b.now.Add(-time.Hour), NextUpdate: b.now.Add(time.Hour)}
				m.Files = append(m.Files, NewFileHash("ta.crl", crl))
				for _, f := range ta.files {
					m.Files = append(m.Files, NewFileHash(f, b.objs[ta.repo+f]))
				}
				der, _ := m.Marshal()
				b.objs[ta.repo+"ta.mft"] = b.sign(ta, ta.repo+"ta.mft", ta.res.Inherited(), OIDContentManifest, der, m.ThisUpdate, m.NextUpdate)
				return a.uri // serial 101 is a's certificate
			},
			want: "serial 101 is revoked", vrps: wantGood[1:],
		},
		{
			name: "second certificate for a key",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				// b issues a certificate for a's key and publication
				// point: a would be its own grandchild.
				loop := b.child(c, "a", "vt-a", Resources{IP: IPResources{Ranges: prefixes("10.1.0.0/16")}}, func(s *CertSpec) {
					s.CARepository, s.Manifest = a.repo, a.repo+"a.mft"
				})
				_ = loop
				b.publish(c)
				b.publish(ta)
				return c.repo + "a.cer"
			},
			want: "duplicate SKI", vrps: wantGood,
		},
		{
			name: "CA loop to the TA",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				// a issues a certificate for the TA's key and publication
				// point: the TA would be its own grandchild.
				b.child(a, "ta", "vt-ta", Resources{IP: IPResources{InheritV4: true}}, func(s *CertSpec) {
					s.CARepository, s.Manifest = ta.repo, ta.repo+"ta.mft"
				})
				b.publish(a)
				b.publish(ta)
				return a.repo + "ta.cer"
			},
			want: "certificate loop", wantErr: ErrLoop, vrps: wantGood,
		},
		{
			name: "a chain too deep",
			cfg:  Config{MaxDepth: 3},
			build: func(b *treeBuilder, ta, a, c *tca) string {
				d1 := b.child(a, "d1", "vt-d1", Resources{IP: IPResources{InheritV4: true}}, nil)
				d2 := b.child(d1, "d2", "vt-d2", Resources{IP: IPResources{InheritV4: true}}, nil)
				b.publish(d2)
				b.publish(d1)
				b.publish(a)
				b.publish(ta)
				return d2.uri
			},
			want: "chain too deep", wantErr: ErrTooDeep, vrps: wantGood,
		},
		{
			name: "an object too large",
			cfg:  Config{MaxObjectSize: 64 << 10},
			build: func(b *treeBuilder, ta, a, c *tca) string {
				b.put(c, "huge.gbr", make([]byte, 65<<10))
				b.publish(c)
				b.publish(ta)
				return c.uri
			},
			want: "object too large", vrps: wantGood[:1],
		},
		{
			name: "too many files on a manifest",
			cfg:  Config{MaxManifestFiles: 3},
			build: func(b *treeBuilder, ta, a, c *tca) string {
				b.roa(c, "b2.roa", ROA{ASID: 64498, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.9.0.0/16")}}}, nil)
				b.roa(c, "b3.roa", ROA{ASID: 64498, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.8.0.0/16")}}}, nil)
				b.publish(c)
				b.publish(ta)
				return c.uri
			},
			want: "4 files, more than 3", vrps: wantGood[:1],
		},
		{
			name: "manifest names another CRL",
			build: func(b *treeBuilder, ta, a, c *tca) string {
				b.put(a, "second.crl", b.objs[a.repo+"a.crl"])
				b.publish(a)
				b.publish(ta)
				return a.uri
			},
			want: "lists two CRLs", vrps: wantGood[1:],
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, ta, a, c, anchor := goodTree(t, now)
			uri := tc.build(b, ta, a, c)
			res := b.validate(tc.cfg, anchor)
			var err error
			if p := problem(res, uri); p != nil {
				err = p
				if p.CA == "" {
					t.Errorf("problem %v names no CA", p)
				}
			} else {
				err = caErr(t, res, uri)
			}
			switch {
			case err == nil:
				t.Fatalf("%s: no error; problems %v", uri, res.Problems)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("%s: error %q, want it to say %q", uri, err, tc.want)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("%s: error %q does not wrap %v", uri, err, tc.wantErr)
			}
			if got := vrpStrings(res); !slices.Equal(got, tc.vrps) {
				t.Errorf("VRPs %v, want %v", got, tc.vrps)
			}
		})
	}
}

// TestValidateIncremental changes one publication point between runs of
// one Validator: only that point is validated again, the result equals a
// fresh validator's, and a manifest whose number goes back leaves the
// previous result in place.
func TestValidateIncremental(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	b, ta, a, _, anchor := goodTree(t, now)
	v, err := NewValidator(Config{Source: b.objs})
	if err != nil {
		t.Fatal(err)
	}
	run := func() *Result {
		t.Helper()
		res, err := v.Validate(context.Background(), []TrustAnchor{anchor}, now)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := run()
	if first.Stats.RevalidatedPoints != 3 {
		t.Fatalf("first run: %d points validated, want 3", first.Stats.RevalidatedPoints)
	}
	oldMft, oldROA := b.objs[a.repo+"a.mft"], b.objs[a.repo+"a.roa"]

	b.roa(a, "a.roa", ROA{ASID: 64500, Prefixes: []ROAPrefix{{Prefix: netip.MustParsePrefix("10.1.2.0/24")}}}, nil)
	b.publish(a)
	second := run()
	if second.Stats.RevalidatedPoints != 1 || second.Stats.ReusedPoints != 2 {
		t.Errorf("second run: %d validated, %d reused, want 1 and 2", second.Stats.RevalidatedPoints, second.Stats.ReusedPoints)
	}
	want := []string{"AS64500,10.1.2.0/24,24", "AS64497,2001:db8::/32,32"}
	if got := vrpStrings(second); !slices.Equal(got, want) {
		t.Errorf("second run: %v, want %v", got, want)
	}
	fresh := b.validate(Config{}, anchor)
	if !slices.Equal(vrpStrings(fresh), vrpStrings(second)) {
		t.Errorf("incremental %v differs from fresh %v", vrpStrings(second), vrpStrings(fresh))
	}

	// Back to the first manifest (number 1, below the accepted 2), with
	// the files it lists gone: the accepted result stays, and the
	// regression is reported.
	b.objs[a.repo+"a.mft"], b.objs[a.repo+"a.roa"] = oldMft, oldROA
	third := run()
	if got := vrpStrings(third); !slices.Equal(got, want) {
		t.Errorf("after a manifest number regression: %v, want the previous %v", got, want)
	}
	if p := problem(third, a.repo+"a.mft"); p == nil || !strings.Contains(p.Error(), "number 1 is not above 2") {
		t.Errorf("the regression is not reported: %v", third.Problems)
	}

	// The TA revokes b (serial 102): b's certificate is in the object
	// memo, yet b must go.
	ta.revoked = []*big.Int{big.NewInt(102)}
	b.publish(ta)
	fourth := run()
	if got, want := vrpStrings(fourth), []string{"AS64500,10.1.2.0/24,24"}; !slices.Equal(got, want) {
		t.Errorf("after revoking b: %v, want %v", got, want)
	}
	if p := problem(fourth, ta.repo+"b.cer"); p == nil || !strings.Contains(p.Error(), "serial 102 is revoked") {
		t.Errorf("the revocation is not reported: %v", fourth.Problems)
	}
	// Unrevoked again: b comes back from the memo.
	ta.revoked = nil
	b.publish(ta)
	if got := vrpStrings(run()); !slices.Equal(got, want) {
		t.Errorf("after unrevoking b: %v, want %v", got, want)
	}
}

// TestTreeSource reads a tree as rrdp-proxy sync writes it, refuses paths
// that leave it, and reads no more than asked.
func TestTreeSource(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "repo1")
	if err := os.MkdirAll(filepath.Join(sub, "example.net", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sub, SyncMarker), []byte("session x\nserial 1\n"), 0o644)
	os.WriteFile(filepath.Join(sub, "example.net", "a", "x.roa"), []byte("hello"), 0o644)
	big, err := os.Create(filepath.Join(sub, "example.net", "a", "big.roa"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(1 << 30) // sparse: a GiB that costs no disk
	big.Close()
	src, err := OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Roots) != 1 || src.Roots[0] != sub {
		t.Fatalf("roots %v, want [%s]", src.Roots, sub)
	}
	if b, err := src.Object("rsync://example.net/a/x.roa", 100); err != nil || string(b) != "hello" {
		t.Errorf("got %q, %v", b, err)
	}
	if _, err := src.Object("rsync://example.net/a/big.roa", 4<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big file: %v, want ErrTooLarge", err)
	}
	if _, err := src.Object("rsync://example.net/a/none.roa", 100); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	for _, bad := range []string{"rsync://example.net/../x", "https://example.net/a/x.roa", "rsync://example.net/a//x.roa", "rsync:///a"} {
		if _, err := src.Object(bad, 100); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want a refusal", bad, err)
		}
	}
}

// TestStableUntil: a result says until when it holds; validating the same
// objects at that instant gives the same VRPs, and a second later
// something has expired. A clone validates apart from its original.
func TestStableUntil(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	b, _, _, _, anchor := goodTree(t, now)
	v, err := NewValidator(Config{Source: b.objs})
	if err != nil {
		t.Fatal(err)
	}
	at := func(v *Validator, when time.Time) *Result {
		t.Helper()
		res, err := v.Validate(context.Background(), []TrustAnchor{anchor}, when)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := at(v, now)
	until := first.StableUntil
	if until.IsZero() || !until.After(now) {
		t.Fatalf("StableUntil %v, want a time after %v", until, now)
	}
	clone := v.Clone()
	if got := at(clone, until); !slices.Equal(vrpStrings(got), vrpStrings(first)) || got.Stats.ReusedPoints != first.Stats.RevalidatedPoints {
		t.Errorf("at StableUntil: %v (%d reused), want %v, every point reused", vrpStrings(got), got.Stats.ReusedPoints, vrpStrings(first))
	}
	if got := at(clone, until.Add(time.Second)); slices.Equal(vrpStrings(got), vrpStrings(first)) && len(got.CAs) == len(first.CAs) && failing(got) == failing(first) {
		t.Errorf("a second after StableUntil: nothing changed (%v)", vrpStrings(got))
	}
	// The clone's runs left v's memory as it was: all reused again.
	if got := at(v, now); got.Stats.ReusedPoints != first.Stats.RevalidatedPoints {
		t.Errorf("the original after the clone's runs: %d reused, want %d", got.Stats.ReusedPoints, first.Stats.RevalidatedPoints)
	}
}

func failing(res *Result) int {
	n := 0
	for _, ca := range res.CAs {
		if ca.Err != nil {
			n++
		}
	}
	return n
}
