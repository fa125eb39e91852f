package rpki

import (
	"errors"
	"io/fs"
	"math/big"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// bbnDifferences lists the cases of the BBN conformance corpus that the
// validator decides against the corpus's name (bad* rejected, good*
// accepted), with the reason; docs/validation.md argues each. Any other
// case decided against its name, or a listed case decided by its name,
// fails the test.
var bbnDifferences = map[string]string{
	// RFC 7935 section 2 allows rsaEncryption as the SignerInfo's
	// signature algorithm; the corpus follows RFC 6485, which wanted
	// sha256WithRSAEncryption. rpki-client accepts it too.
	"root/badCMSSigInfoWrongSigAlg.roa": "accepted",
	// A vCard 3.0 with an N property: RFC 6493 section 5 wants vCard 4.0
	// and allows only BEGIN, VERSION, FN, ORG, ADR, TEL, EMAIL, END.
	"root/goodRealGbrNothingIsWrong.gbr": "rejected",
}

// bbnValidator runs the corpus's files through the validator's own
// checks: the TA check with the corpus root's key as the TAL's, the
// object checks of a publication point (issuerContext.check) for
// certificates, ROAs and Ghostbusters records, checkCRL for CRLs, and the
// manifest checks of a publication point for manifests.
type bbnValidator struct {
	dir  string
	now  time.Time
	tal  *TrustAnchorLocator
	root *issuerContext
}

func (h *bbnValidator) read(rel string) []byte {
	b, err := readFileErr(filepath.Join(h.dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil
	}
	return b
}

// issuer returns the context of the publication point root/sub: the CA
// root/sub.cer as checked in root's publication point, and its CRL.
func (h *bbnValidator) issuer(sub string) (*issuerContext, error) {
	o := h.root.check("rsync://rpki.bbn.com/conformance/root/"+sub+".cer", h.read("root/"+sub+".cer"))
	if o.err != nil {
		return nil, o.err
	}
	ic := &issuerContext{ca: o.cert, revoked: func(*big.Int) bool { return false }, now: h.now}
	for _, name := range []string{sub + ".crl", "goodCRLMatch.crl"} {
		if der := h.read("root/" + sub + "/" + name); der != nil {
			crl, err := checkCRL(o.cert, der, h.now, nil)
			if err != nil {
				return nil, err
			}
			ic.revoked = revocationSet(crl)
			break
		}
	}
	return ic, nil
}

func (h *bbnValidator) check(rel string) error {
	data := h.read(rel)
	uri := "rsync://rpki.bbn.com/conformance/" + rel
	parts := strings.Split(rel, "/")
	ext := path.Ext(rel)
	r := &run{v: &Validator{cfg: Config{}.withDefaults()}, now: h.now}
	switch {
	case len(parts) == 1:
		_, err := r.checkTA(h.tal, data)
		return err
	case rel == "root/goodRealGbrNothingIsWrong.gbr":
		// A real record from another repository, whose issuer is not in
		// the corpus: only the object and its vCard can be checked.
		so, err := ParseSignedObject(data)
		if err != nil {
			return err
		}
		return checkVCard(so.Content)
	case len(parts) == 2:
		return h.checkObject(h.root, uri, data, ext)
	case len(parts) == 3:
		ic, err := h.issuer(parts[1])
		if err != nil {
			return err
		}
		return h.checkObject(ic, uri, data, ext)
	}
	return errors.New("unexpected place in the corpus")
}

func (h *bbnValidator) checkObject(ic *issuerContext, uri string, data []byte, ext string) error {
	switch ext {
	case ".crl":
		_, err := checkCRL(ic.ca, data, h.now, nil)
		return err
	case ".mft":
		so, m, err := parseManifestObject(data)
		if err != nil {
			return err
		}
		if err := checkManifestTime(m, h.now); err != nil {
			return err
		}
		_, err = so.verifyIssued(ic.ca, ic.revoked, h.now)
		return err
	}
	o := ic.check(uri, data)
	if o.err == nil && o.kind == kindOther {
		return errors.New("not an object the validator processes")
	}
	return o.err
}

// TestValidateBBNConformance runs every bad* and good* case of the BBN
// RPKI syntax conformance corpus through the validator's checks, one
// subtest per file: bad cases must be rejected and good ones accepted,
// except the cases of bbnDifferences.
func TestValidateBBNConformance(t *testing.T) {
	dir := realdata.Path(t, "rpki-commons", "src", "test", "resources", "conformance")
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rootDER := readFile(t, filepath.Join(dir, "root.cer"))
	root, err := ParseCert(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	h := &bbnValidator{dir: dir, now: now, tal: &TrustAnchorLocator{URIs: []string{"rsync://rpki.bbn.com/conformance/root.cer"}, SPKI: root.RawSPKI}}
	r := &run{v: &Validator{cfg: Config{}.withDefaults()}, now: now}
	if root, err = r.checkTA(h.tal, rootDER); err != nil {
		t.Fatal(err)
	}
	crl, err := checkCRL(root, readFile(t, filepath.Join(dir, "root", "root.crl")), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.root = &issuerContext{ca: root, crlURI: "rsync://rpki.bbn.com/conformance/root/root.crl", revoked: revocationSet(crl), now: now}

	var cases []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b := d.Name(); strings.HasPrefix(b, "bad") || strings.HasPrefix(b, "good") {
			rel, _ := filepath.Rel(dir, p)
			cases = append(cases, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cases)
	if len(cases) < 350 {
		t.Fatalf("found %d cases, want the corpus's 357", len(cases))
	}
	for _, rel := range cases {
		t.Run(rel, func(t *testing.T) {
			err := h.check(rel)
			got := "accepted"
			if err != nil {
				got = "rejected"
			}
			want := "rejected"
			if strings.HasPrefix(path.Base(rel), "good") {
				want = "accepted"
			}
			if d, listed := bbnDifferences[rel]; listed {
				if got != d {
					t.Errorf("listed as %s against the corpus, but %s (%v): remove it from bbnDifferences", d, got, err)
				}
				return
			}
			if got != want {
				t.Errorf("%s, want %s (err: %v)", got, want, err)
			}
		})
	}
	for rel := range bbnDifferences {
		if !slices.Contains(cases, rel) {
			t.Errorf("bbnDifferences lists %s, which is not in the corpus", rel)
		}
	}
}
