package rpki

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"
)

// walkResult is what walkRepo found: VRPs as "AS<n>,prefix,maxlen",
// ASPAs as "AS<c>:AS<p>,...", and the URIs it verified.
type walkResult struct {
	VRPs    []string
	ASPAs   []string
	Visited map[string]bool
}

// walkRepo validates a repository top-down like a relying party: the TA,
// then per CA its manifest (signature, CRL, hashes of every listed file),
// and every listed object. Any failure fails the test. objects maps rsync
// URIs to their content.
func walkRepo(t testing.TB, taDER []byte, objects map[string][]byte, now time.Time) walkResult {
	t.Helper()
	ta, err := ParseCert(taDER)
	if err != nil {
		t.Fatalf("TA: %v", err)
	}
	if err := ta.VerifyTA(now); err != nil {
		t.Fatal(err)
	}
	res := walkResult{Visited: map[string]bool{}}
	walkCA(t, ta, objects, now, &res, 0)
	slices.Sort(res.VRPs)
	slices.Sort(res.ASPAs)
	return res
}

func walkCA(t testing.TB, ca *Cert, objects map[string][]byte, now time.Time, res *walkResult, depth int) {
	t.Helper()
	if depth > 8 {
		t.Fatalf("CA %q: chain too deep", ca.SubjectCN)
	}
	get := func(uri string) []byte {
		t.Helper()
		b, ok := objects[uri]
		if !ok {
			t.Fatalf("CA %q: %s is missing", ca.SubjectCN, uri)
		}
		res.Visited[uri] = true
		return b
	}
	mft, err := ParseSignedObject(get(ca.Manifest))
	if err != nil {
		t.Fatalf("%s: %v", ca.Manifest, err)
	}
	crl, err := ParseCRL(get(mft.EE.CRL))
	if err != nil {
		t.Fatalf("%s: %v", mft.EE.CRL, err)
	}
	if err := mft.Verify(ca, crl, now); err != nil {
		t.Fatalf("%s: %v", ca.Manifest, err)
	}
	m, err := ParseManifest(mft.Content)
	if err != nil {
		t.Fatalf("%s: %v", ca.Manifest, err)
	}
	// Files are named relative to the manifest's directory: Krill writes
	// caRepository without its trailing slash.
	dir := ca.Manifest[:strings.LastIndexByte(ca.Manifest, '/')+1]
	files := map[string][]byte{}
	for _, f := range m.Files {
		files[f.Name] = get(dir + f.Name)
	}
	if err := m.CheckFiles(files); err != nil {
		t.Fatalf("%s: %v", ca.Manifest, err)
	}
	for _, f := range m.Files {
		uri := dir + f.Name
		data := files[f.Name]
		switch path.Ext(f.Name) {
		case ".crl":
			if uri != mft.EE.CRL {
				t.Errorf("%s: a second CRL", uri)
			}
		case ".cer":
			child, err := ParseCert(data)
			if err != nil {
				t.Fatalf("%s: %v", uri, err)
			}
			r, err := child.Verify(ca, crl, now)
			if err != nil {
				t.Fatalf("%s: %v", uri, err)
			}
			if !child.IsCA {
				t.Fatalf("%s: an EE certificate published alone", uri)
			}
			child.Resources = r
			walkCA(t, child, objects, now, res, depth+1)
		case ".roa", ".asa", ".gbr":
			so, err := ParseSignedObject(data)
			if err != nil {
				t.Fatalf("%s: %v", uri, err)
			}
			if err := so.Verify(ca, crl, now); err != nil {
				t.Fatalf("%s: %v", uri, err)
			}
			switch {
			case so.ContentType.Equal(OIDContentROA):
				roa, err := ParseROA(so.Content)
				if err != nil {
					t.Fatalf("%s: %v", uri, err)
				}
				for _, p := range roa.Prefixes {
					res.VRPs = append(res.VRPs, fmt.Sprintf("AS%d,%s,%d", roa.ASID, p.Prefix, p.MaxLength))
				}
			case so.ContentType.Equal(OIDContentASPA):
				a, err := ParseASPA(so.Content)
				if err != nil {
					t.Fatalf("%s: %v", uri, err)
				}
				var ps []string
				for _, p := range a.Providers {
					ps = append(ps, fmt.Sprintf("AS%d", p.ASID))
				}
				res.ASPAs = append(res.ASPAs, fmt.Sprintf("AS%d:%s", a.CustomerASID, strings.Join(ps, ",")))
			}
		default:
			t.Errorf("%s: unexpected file type", uri)
		}
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFileErr(name string) ([]byte, error) { return os.ReadFile(name) }
