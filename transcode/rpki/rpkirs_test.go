package rpki

import (
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// TestRIPERepository verifies the RIPE NCC TA publication point of 2019
// kept by rpki-rs: TA, CRL, manifest and the child CA, and the manifest's
// hashes against the files.
func TestRIPERepository(t *testing.T) {
	read := func(name string) []byte {
		return readFile(t, realdata.Path(t, "rpki-rs", "test-data", "repository", name))
	}
	now := time.Date(2019, 4, 6, 12, 0, 0, 0, time.UTC)
	ta, err := ParseCert(read("ta.cer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.VerifyTA(now); err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(read("ta.crl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.Verify(ta, now); err != nil {
		t.Fatal(err)
	}
	mft, err := ParseSignedObject(read("ta.mft"))
	if err != nil {
		t.Fatal(err)
	}
	if err := mft.Verify(ta, crl, now); err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(mft.Content)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckFiles(map[string][]byte{
		"ripe-ncc-ta.crl": read("ta.crl"),
		"2a7dd1d787d793e4c8af56e197d4eed92af6ba13.cer": read("ca1.cer"),
	}); err != nil {
		t.Errorf("TA manifest: %v", err)
	}
	if err := m.CheckFiles(map[string][]byte{
		"ripe-ncc-ta.crl": read("ca1.crl"),
		"2a7dd1d787d793e4c8af56e197d4eed92af6ba13.cer": read("ca1.cer"),
	}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("TA manifest with a wrong CRL: got %v, want a hash mismatch", err)
	}

	ca, err := ParseCert(read("ca1.cer"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ca.Verify(ta, crl, now)
	if err != nil {
		t.Fatal(err)
	}
	ca.Resources = res
	caCRL, err := ParseCRL(read("ca1.crl"))
	if err != nil {
		t.Fatal(err)
	}
	caMft, err := ParseSignedObject(read("ca1.mft"))
	if err != nil {
		t.Fatal(err)
	}
	if err := caMft.Verify(ca, caCRL, now); err != nil {
		t.Fatal(err)
	}
	cm, err := ParseManifest(caMft.Content)
	if err != nil {
		t.Fatal(err)
	}
	// Only the CRL of this publication point is kept: the two child
	// certificates must be reported missing, and only they.
	err = cm.CheckFiles(map[string][]byte{"Kn3R14fXk-TIr1bhl9Tu2Sr2uhM.crl": read("ca1.crl")})
	if err == nil || strings.Count(err.Error(), "is missing") != 2 || strings.Contains(err.Error(), "does not match") {
		t.Errorf("CA manifest: got %v, want exactly two missing files", err)
	}

	if err := mft.Verify(ta, crl, time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("TA manifest verified after its nextUpdate")
	}
}

// TestRIPERepositoryNegative checks that the broken objects of rpki-rs are
// rejected for their reason.
func TestRIPERepositoryNegative(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"maxlen-overflow.roa", "maxLength 124 out of range"},
		{"maxlen-underflow.roa", "maxLength 2 out of range"},
		{"prefix-len-overflow.roa", "IPAddress of 16 octets exceeds 4"},
		{"signature-alg-mismatch.mft", "signatureAlgorithm differs"},
		// Edited after signing: the digest fails before the file name.
		{"ta.mft.bad-filename", "message-digest attribute does not match"},
		// Not broken on purpose, but outside the RFC 6487 profile.
		{"router.cer", "commonName is not a PrintableString"},
		{"aspa-bm.asa", "commonName is not a PrintableString"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := readFile(t, realdata.Path(t, "rpki-rs", "test-data", "repository", tt.file))
			name := strings.TrimSuffix(tt.file, ".bad-filename")
			_, err := parseByExt(name, data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, file := range []string{"example-ripe.roa", "ca1.cer", "ca1.crl", "ca1.mft", "ta.cer", "ta.crl", "ta.mft"} {
		if _, err := parseByExt(file, readFile(t, realdata.Path(t, "rpki-rs", "test-data", "repository", file))); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
