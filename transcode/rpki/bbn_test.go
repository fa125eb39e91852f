package rpki

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// bbnFloor holds the results reached on the BBN corpus: a change that
// lowers them fails the test.
// The one bad case accepted, badCMSSigInfoWrongSigAlg.roa, signs with
// rsaEncryption, which RFC 7935 section 2 allowed after the corpus was
// written (RFC 6485 wanted sha256WithRSAEncryption). The one good case
// rejected, goodRealGbrNothingIsWrong.gbr, is a vCard 3.0 with an N
// property, outside the RFC 6493 profile (vCard 4.0, no N).
const (
	bbnBadRejectedFloor = 283
	bbnGoodAcceptedMin  = 72
)

// bbnCase runs one file of the BBN conformance corpus through parsing and,
// as far as its place in the corpus allows, verification against its
// issuer at now. rel is the path below the corpus directory.
type bbnHarness struct {
	dir     string
	now     time.Time
	root    *Cert
	rootCRL *CRL
}

func (h *bbnHarness) read(rel string) ([]byte, error) {
	return readFileErr(filepath.Join(h.dir, filepath.FromSlash(rel)))
}

// issuerOf returns the CA certificate and CRL of a subdirectory of root/:
// root/SUB.cer, verified against the root, and the CRL found in root/SUB/
// (SUB.crl, or the good*.crl of the name tests).
func (h *bbnHarness) issuerOf(sub string) (*Cert, *CRL, error) {
	der, err := h.read("root/" + sub + ".cer")
	if err != nil {
		return nil, nil, err
	}
	ca, err := ParseCert(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	res, err := ca.Verify(h.root, h.rootCRL, h.now)
	if err != nil {
		return nil, nil, fmt.Errorf("issuer: %w", err)
	}
	ca.Resources = res
	var crl *CRL
	for _, name := range []string{sub + ".crl", "goodCRLMatch.crl"} {
		if der, err := h.read("root/" + sub + "/" + name); err == nil {
			if crl, err = ParseCRL(der); err != nil {
				return nil, nil, fmt.Errorf("issuer CRL: %w", err)
			}
			break
		}
	}
	return ca, crl, nil
}

func (h *bbnHarness) check(rel string) error {
	data, err := h.read(rel)
	if err != nil {
		return err
	}
	parts := strings.Split(rel, "/")
	ext := path.Ext(rel)
	switch {
	case len(parts) == 1: // trust anchors
		c, err := ParseCert(data)
		if err != nil {
			return err
		}
		return c.VerifyTA(h.now)
	case len(parts) == 2 && ext == ".cer":
		c, err := ParseCert(data)
		if err != nil {
			return err
		}
		_, err = c.Verify(h.root, h.rootCRL, h.now)
		return err
	case rel == "root/goodRealGbrNothingIsWrong.gbr":
		// A real record from another repository: its issuer is not in the
		// corpus, so only the object and its vCard are checked.
		so, err := ParseSignedObject(data)
		if err != nil {
			return err
		}
		return checkVCard(so.Content)
	case len(parts) == 2:
		return h.checkSigned(data, ext, h.root, h.rootCRL)
	case len(parts) == 3:
		ca, crl, err := h.issuerOf(parts[1])
		if err != nil {
			return err
		}
		switch ext {
		case ".crl":
			l, err := ParseCRL(data)
			if err != nil {
				return err
			}
			return l.Verify(ca, h.now)
		case ".cer":
			c, err := ParseCert(data)
			if err != nil {
				return err
			}
			_, err = c.Verify(ca, crl, h.now)
			return err
		default:
			return h.checkSigned(data, ext, ca, crl)
		}
	}
	return fmt.Errorf("unexpected place in the corpus: %s", rel)
}

func (h *bbnHarness) checkSigned(data []byte, ext string, ca *Cert, crl *CRL) error {
	so, err := ParseSignedObject(data)
	if err != nil {
		return err
	}
	want := map[string]string{".roa": OIDContentROA.String(), ".mft": OIDContentManifest.String(), ".gbr": oidContentGBR.String()}[ext]
	if so.ContentType.String() != want {
		return fmt.Errorf("content type %v, want %s for %s", so.ContentType, want, ext)
	}
	return so.Verify(ca, crl, h.now)
}

// TestBBNConformance runs the BBN RPKI syntax conformance corpus: files
// named bad* must be rejected, good* accepted. It logs every outcome and
// fails when fewer bad cases are rejected, or fewer good ones accepted,
// than bbnBadRejectedFloor and bbnGoodAcceptedMin.
func TestBBNConformance(t *testing.T) {
	dir := realdata.Path(t, "rpki-commons", "src", "test", "resources", "conformance")
	h := &bbnHarness{dir: dir, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var err error
	rootDER, err := h.read("root.cer")
	if err != nil {
		t.Fatal(err)
	}
	if h.root, err = ParseCert(rootDER); err != nil {
		t.Fatal(err)
	}
	if err := h.root.VerifyTA(h.now); err != nil {
		t.Fatal(err)
	}
	crlDER, err := h.read("root/root.crl")
	if err != nil {
		t.Fatal(err)
	}
	if h.rootCRL, err = ParseCRL(crlDER); err != nil {
		t.Fatal(err)
	}
	if err := h.rootCRL.Verify(h.root, h.now); err != nil {
		t.Fatal(err)
	}

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
	var bad, badRejected, good, goodAccepted int
	var missed, falseReject []string
	for _, rel := range cases {
		err := h.check(rel)
		isBad := strings.HasPrefix(path.Base(rel), "bad")
		switch {
		case isBad && err != nil:
			bad++
			badRejected++
			t.Logf("ok   %s: rejected: %v", rel, err)
		case isBad:
			bad++
			missed = append(missed, rel)
			t.Logf("MISS %s: accepted", rel)
		case err == nil:
			good++
			goodAccepted++
			t.Logf("ok   %s: accepted", rel)
		default:
			good++
			falseReject = append(falseReject, fmt.Sprintf("%s: %v", rel, err))
			t.Logf("MISS %s: rejected: %v", rel, err)
		}
	}
	t.Logf("bad cases rejected: %d of %d; good cases accepted: %d of %d", badRejected, bad, goodAccepted, good)
	t.Logf("bad cases accepted:\n%s", strings.Join(missed, "\n"))
	t.Logf("good cases rejected:\n%s", strings.Join(falseReject, "\n"))
	if badRejected < bbnBadRejectedFloor {
		t.Errorf("rejected %d bad cases, want at least %d", badRejected, bbnBadRejectedFloor)
	}
	if goodAccepted < bbnGoodAcceptedMin {
		t.Errorf("accepted %d good cases, want at least %d", goodAccepted, bbnGoodAcceptedMin)
	}
}
