package repotest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// ApplyRRDP applies the publishes and withdraws of the RRDP snapshot or
// delta file to src: what a relying party's cache does, for a validator
// fed a generated repository.
func ApplyRRDP(src rpki.MapSource, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	d := rrdpxml.NewDecoder(f, rrdpxml.Limits{})
	defer d.Close()
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if e.Withdraw {
			delete(src, e.URI)
			continue
		}
		src[e.URI] = slices.Clone(e.Content)
	}
}

// TrustAnchor returns the trust anchor of the repository generated in
// dir: its TAL and TA certificate.
func TrustAnchor(dir string) (rpki.TrustAnchor, error) {
	b, err := os.ReadFile(filepath.Join(dir, TALPath))
	if err != nil {
		return rpki.TrustAnchor{}, err
	}
	tal, err := rpki.ParseTAL(b)
	if err != nil {
		return rpki.TrustAnchor{}, fmt.Errorf("%s: %w", TALPath, err)
	}
	cert, err := os.ReadFile(filepath.Join(dir, TACertPath))
	if err != nil {
		return rpki.TrustAnchor{}, err
	}
	return rpki.TrustAnchor{Name: "ta", TAL: tal, Cert: cert, CertFile: TACertPath}, nil
}
