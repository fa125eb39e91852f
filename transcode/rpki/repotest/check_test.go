package repotest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// rrdpElem is one decoded publish or withdraw element.
type rrdpElem struct {
	uri      string
	withdraw bool
	hash     *[32]byte
	content  []byte
}

// readRRDP decodes a snapshot or delta of the repository in dir.
func readRRDP(t *testing.T, dir string, f File) (rrdpxml.Header, []rrdpElem) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(raw); got != f.Hash {
		t.Fatalf("%s: hash %x, want %x", f.Path, got, f.Hash)
	}
	if int64(len(raw)) != f.Size {
		t.Fatalf("%s: %d bytes, want %d", f.Path, len(raw), f.Size)
	}
	dec := rrdpxml.NewDecoder(bytes.NewReader(raw), rrdpxml.Limits{})
	defer dec.Close()
	h, err := dec.Header()
	if err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	var out []rrdpElem
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		el := rrdpElem{uri: e.URI, withdraw: e.Withdraw, content: bytes.Clone(e.Content)}
		if e.HasHash {
			h := e.Hash
			el.hash = &h
		}
		out = append(out, el)
	}
	return h, out
}

// snapshotObjects returns the objects of the current snapshot by URI.
func snapshotObjects(t *testing.T, dir string, f File) map[string][]byte {
	t.Helper()
	_, elems := readRRDP(t, dir, f)
	m := map[string][]byte{}
	for _, e := range elems {
		if e.withdraw || e.hash != nil {
			t.Fatalf("%s: snapshot element %s has a hash or is a withdraw", f.Path, e.uri)
		}
		m[e.uri] = e.content
	}
	return m
}

// validate walks the repository in dir from its TAL, the way a relying
// party does, at now: every certificate, CRL and signed object verified,
// every manifest listing exactly the files of its publication point with
// their hashes, every CA naming the notification of the RRDP repository
// that holds its publication point, no object left unreached. It returns
// the VRPs.
func validate(t *testing.T, dir string, info Info, now time.Time) []rpki.VRP {
	t.Helper()
	objs := map[string][]byte{}
	notify := map[string]string{} // object URI -> its repository's notification
	for _, r := range info.Repositories {
		for u, der := range snapshotObjects(t, filepath.Join(dir, r.Dir), r.Snapshot) {
			if _, dup := objs[u]; dup {
				t.Errorf("%s is published in two repositories", u)
			}
			objs[u] = der
			notify[u] = r.BaseURL + NotificationPath
		}
	}
	taDER, err := os.ReadFile(filepath.Join(dir, TACertPath))
	if err != nil {
		t.Fatal(err)
	}
	ta, err := rpki.ParseCert(taDER)
	if err != nil {
		t.Fatalf("TA certificate: %v", err)
	}
	if err := ta.VerifyTA(now); err != nil {
		t.Fatalf("TA certificate: %v", err)
	}
	tal, err := os.ReadFile(filepath.Join(dir, TALPath))
	if err != nil {
		t.Fatal(err)
	}
	uri, key, ok := strings.Cut(string(tal), "\n\n")
	if !ok || uri != info.BaseURL+TACertPath {
		t.Errorf("TAL names %q, want %q", uri, info.BaseURL+TACertPath)
	}
	if spki, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(key), "")); err != nil || !bytes.Equal(spki, ta.RawSPKI) {
		t.Errorf("TAL key is not the TA certificate's (%v)", err)
	}

	seen := map[string]bool{}
	var vrps []rpki.VRP
	var walk func(ca *rpki.Cert)
	walk = func(ca *rpki.Cert) {
		mftDER, ok := objs[ca.Manifest]
		if !ok {
			t.Errorf("%s: manifest %s not published", ca.SubjectCN, ca.Manifest)
			return
		}
		if ca.Notify != notify[ca.Manifest] {
			t.Errorf("%s: rpkiNotify %q, want %q", ca.SubjectCN, ca.Notify, notify[ca.Manifest])
		}
		seen[ca.Manifest] = true
		mftSO, err := rpki.ParseSignedObject(mftDER)
		if err != nil {
			t.Errorf("%s: %v", ca.Manifest, err)
			return
		}
		crlDER, ok := objs[mftSO.EE.CRL]
		if !ok {
			t.Errorf("%s: CRL %s not published", ca.SubjectCN, mftSO.EE.CRL)
			return
		}
		crl, err := rpki.ParseCRL(crlDER)
		if err == nil {
			err = crl.Verify(ca, now)
		}
		if err != nil {
			t.Errorf("%s: %v", mftSO.EE.CRL, err)
			return
		}
		if err := mftSO.Verify(ca, crl, now); err != nil {
			t.Errorf("%s: %v", ca.Manifest, err)
			return
		}
		mft, err := rpki.ParseManifest(mftSO.Content)
		if err != nil {
			t.Errorf("%s: %v", ca.Manifest, err)
			return
		}
		// The manifest lists exactly the other files of the directory.
		listed := map[string]bool{}
		for _, f := range mft.Files {
			u := ca.CARepository + f.Name
			listed[u] = true
			der, ok := objs[u]
			if !ok {
				t.Errorf("%s lists %s, which is not published", ca.Manifest, f.Name)
				continue
			}
			if sha256.Sum256(der) != f.Hash {
				t.Errorf("%s: hash of %s differs", ca.Manifest, f.Name)
			}
		}
		for u := range objs {
			rest, ok := strings.CutPrefix(u, ca.CARepository)
			if ok && !strings.Contains(rest, "/") && u != ca.Manifest && !listed[u] {
				t.Errorf("%s is published but not on %s", u, ca.Manifest)
			}
		}
		for _, f := range mft.Files {
			u := ca.CARepository + f.Name
			der := objs[u]
			if der == nil {
				continue
			}
			seen[u] = true
			switch filepath.Ext(f.Name) {
			case ".crl":
			case ".cer":
				child, err := rpki.ParseCert(der)
				if err != nil {
					t.Errorf("%s: %v", u, err)
					continue
				}
				res, err := child.Verify(ca, crl, now)
				if err != nil {
					t.Errorf("%s: %v", u, err)
					continue
				}
				child.Resources = res
				walk(child)
			case ".roa", ".asa":
				so, err := rpki.ParseSignedObject(der)
				if err == nil {
					err = so.Verify(ca, crl, now)
				}
				if err != nil {
					t.Errorf("%s: %v", u, err)
					continue
				}
				if so.EE.SignedObject != u {
					t.Errorf("%s: EE names %s", u, so.EE.SignedObject)
				}
				if f.Name[len(f.Name)-3:] == "asa" {
					continue
				}
				roa, err := rpki.ParseROA(so.Content)
				if err != nil {
					t.Errorf("%s: %v", u, err)
					continue
				}
				for _, p := range roa.Prefixes {
					vrps = append(vrps, rpki.VRP{ASN: roa.ASID, Prefix: p.Prefix, MaxLength: p.MaxLength})
				}
			default:
				t.Errorf("%s: unexpected file type", u)
			}
		}
	}
	walk(ta)
	for u := range objs {
		if !seen[u] {
			t.Errorf("%s is published but not reachable from the TA", u)
		}
	}
	return rpki.SortVRPs(vrps)
}

// checkVRPs validates the repository at now and compares its VRPs with
// expected-vrps.csv and with Repo.VRPs.
func checkVRPs(t *testing.T, r *Repo, dir string, now time.Time) {
	t.Helper()
	got := validate(t, dir, r.Info(), now)
	want, err := rp.ReadVRPCSV(filepath.Join(dir, VRPPath))
	if err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(got, want, 10); d != "" {
		t.Errorf("published ROAs differ from %s:\n%s", VRPPath, d)
	}
	if d := rpki.DiffVRPs(r.VRPs(), want, 10); d != "" {
		t.Errorf("Repo.VRPs differs from %s:\n%s", VRPPath, d)
	}
}
