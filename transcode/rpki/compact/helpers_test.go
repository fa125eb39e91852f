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

func trust(t testing.TB, s *Signer) Trust {
	t.Helper()
	pub, err := MarshalPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	return Trust{Keys: k}
}

// applyRRDP applies an RRDP snapshot or delta file to src.
func applyRRDP(t testing.TB, src rpki.MapSource, file string) {
	t.Helper()
	if err := repotest.ApplyRRDP(src, file); err != nil {
		t.Fatal(err)
	}
}

// validateAndBuild validates src from tas at now and builds its groups.
func validateAndBuild(t testing.TB, src rpki.MapSource, tas []rpki.TrustAnchor, now time.Time, s *Signer) (*rpki.Result, []*irpkipb.CompactCA) {
	t.Helper()
	v, err := rpki.NewValidator(rpki.Config{Source: src, KeepPoints: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(context.Background(), tas, now)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := Build(context.Background(), src, res, s)
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
