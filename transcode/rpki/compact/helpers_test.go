package compact

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

// testSigner returns a signer with a key derived from a fixed seed.
func testSigner(t testing.TB, seed byte) *Signer {
	t.Helper()
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trust returns a Trust of the primary keys of ss, through a trust file.
func trust(t testing.TB, ss ...*Signer) Trust {
	t.Helper()
	var file []byte
	for _, s := range ss {
		pub, err := MarshalPublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, pub...)
	}
	k, err := ParseKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	return Trust{Keys: k}
}

// resign signs m again with s, as a producer would after changing it.
func resign(m *irpkipb.Manifest, s *Signer) {
	m.Signature, m.MoreSignatures = nil, nil
	m.Signature, m.MoreSignatures = s.sign(iMFTLabel, marshal(m))
}

// applyRRDP applies an RRDP snapshot or delta file to src.
func applyRRDP(t testing.TB, src rpki.MapSource, file string) {
	t.Helper()
	if err := repotest.ApplyRRDP(src, file); err != nil {
		t.Fatal(err)
	}
}

// variants are the two ways a group carries its CA: the certificate
// (the default) or a CA record (Builder.OmitCertificates).
var variants = []struct {
	name string
	lean bool
}{{"certificates", false}, {"lean", true}}

// validateAndBuild validates src from tas at now and builds its groups,
// lean or with certificates.
func validateAndBuild(t testing.TB, src rpki.MapSource, tas []rpki.TrustAnchor, now time.Time, s *Signer, lean bool) (*rpki.Result, []*irpkipb.CompactCA) {
	t.Helper()
	v, err := rpki.NewValidator(rpki.Config{Source: src, KeepPoints: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(context.Background(), tas, now)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := (&Builder{OmitCertificates: lean}).Build(context.Background(), src, res, s)
	if err != nil {
		t.Fatal(err)
	}
	return res, groups
}

// files is a published directory in memory, and its fetcher.
type files map[string][]byte

func (f files) add(fs []File) {
	for _, x := range fs {
		f[x.Name] = x.Data
	}
}

// fetch resolves names relative to "compact/", as a client resolves them
// against the notification's URL.
func (f files) fetch(uri string) ([]byte, error) {
	b, ok := f["compact/"+uri]
	if !ok {
		return nil, os.ErrNotExist
	}
	return b, nil
}

func csv(t testing.TB, res *rpki.Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := res.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
