package rpki

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// parseByExt parses one object by its file extension, as far as it goes
// without its issuer, and returns a one-line summary.
func parseByExt(name string, data []byte) (string, error) {
	switch path.Ext(name) {
	case ".cer":
		c, err := ParseCert(data)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("cert %q ca=%v ta=%v", c.SubjectCN, c.IsCA, c.SelfSigned), nil
	case ".crl":
		l, err := ParseCRL(data)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("crl %s revoked=%d", l.Number, len(l.Revoked)), nil
	case ".roa", ".mft", ".asa", ".gbr", ".sig", ".tak", ".spl":
		so, err := ParseSignedObject(data)
		if err != nil {
			return "", err
		}
		want := map[string]string{".roa": OIDContentROA.String(), ".mft": OIDContentManifest.String(), ".asa": OIDContentASPA.String(), ".gbr": oidContentGBR.String()}[path.Ext(name)]
		if want != "" && so.ContentType.String() != want {
			return "", fmt.Errorf("content type %v, want %s", so.ContentType, want)
		}
		switch path.Ext(name) {
		case ".roa":
			r, err := ParseROA(so.Content)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("roa AS%d %d prefixes", r.ASID, len(r.Prefixes)), nil
		case ".mft":
			m, err := ParseManifest(so.Content)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("mft %s %d files", m.Number, len(m.Files)), nil
		case ".asa":
			a, err := ParseASPA(so.Content)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("aspa v%d AS%d %d providers", a.Version, a.CustomerASID, len(a.Providers)), nil
		}
		return fmt.Sprintf("signed object %v", so.ContentType), nil
	}
	return "", fmt.Errorf("unknown extension")
}

// TestRIPESnapshot parses every object of a trimmed RIPE NCC snapshot, 148
// of them CMS in BER with indefinite lengths, and checks that parsing the
// DER form again gives the same result.
func TestRIPESnapshot(t *testing.T) {
	objects, order := readSnapshot(t, realdata.Path(t, "rpki-rs", "test-data", "rrdp", "ripe-snapshot.xml"))
	if len(order) != 277 {
		t.Fatalf("snapshot holds %d objects, want 277", len(order))
	}
	var ber, failed, empty int
	counts := map[string]int{}
	for _, uri := range order {
		data := objects[uri]
		if len(data) == 0 { // the trimmed test data holds two empty publish elements
			empty++
			continue
		}
		sum, err := parseByExt(uri, data)
		if err != nil {
			failed++
			t.Errorf("%s: %v", uri, err)
			continue
		}
		counts[path.Ext(uri)]++
		switch path.Ext(uri) {
		case ".roa", ".mft", ".asa", ".gbr":
			so, err := ParseSignedObject(data)
			if err != nil {
				t.Fatal(err)
			}
			if &so.DER[0] != &data[0] {
				ber++
			}
			again, err := ParseSignedObject(so.DER)
			if err != nil {
				t.Errorf("%s: DER form: %v", uri, err)
				continue
			}
			if !slices.Equal(again.DER, so.DER) || !slices.Equal(again.Content, so.Content) || !again.ContentType.Equal(so.ContentType) {
				t.Errorf("%s: parsing the DER form again differs", uri)
			}
			if sum2, err := parseByExt(uri, so.DER); err != nil || sum2 != sum {
				t.Errorf("%s: summary %q, then %q (%v)", uri, sum, sum2, err)
			}
		}
	}
	t.Logf("parsed %d of %d objects (%v), %d empty, %d needed BER normalisation", len(order)-failed-empty, len(order), counts, empty, ber)
	if empty != 2 {
		t.Errorf("got %d empty objects, want 2", empty)
	}
	if ber != 148 {
		t.Errorf("got %d BER objects, want 148", ber)
	}
}

// regressRejected are the regression objects of rpki-client outside our
// profile, with the error they must get.
var regressRejected = map[string]string{
	// A BGPsec router certificate (RFC 8209): EC key, BGPsec EKU.
	"cer/Vr46VDCUfrRNL9yZAy4mxfEAspQ.cer": "want rsaEncryption",
}

// TestRegressObjects parses the real objects of rpki-client's regression
// tests.
func TestRegressObjects(t *testing.T) {
	dir := realdata.Path(t, "rpki-client-openbsd", "src", "regress", "usr.sbin", "rpki-client")
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "rrdp" {
			continue
		}
		n++
		name, _ := filepath.Rel(dir, f)
		t.Run(name, func(t *testing.T) {
			data := readFile(t, f)
			sum, err := parseByExt(f, data)
			if want, ok := regressRejected[filepath.ToSlash(name)]; ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want an error containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Errorf("%v", err)
				return
			}
			t.Log(sum)
		})
	}
	if n == 0 {
		t.Fatal("no objects found")
	}
}
