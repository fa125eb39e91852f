package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// maxTACert caps a TA certificate read beside its TAL.
const maxTACert = 4 << 20

// validation checks [validate] and reads its TALs and TA certificates.
func (p *parser) validation(c *Config) {
	v := c.Validate
	const key = "validate"
	if len(v.TALs) == 0 {
		p.errorf(key+".tals", "no TAL: list the TAL files to validate from")
	}
	if v.Gate && c.Server.AdminListen == "" {
		p.errorf(key+".gate", "needs server.admin_listen: a held serial is released through the admin listener (rrdp-proxy release)")
	}
	for _, k := range []struct {
		name string
		x    float64
	}{{"max_vrp_loss", v.MaxVRPLoss}, {"max_aspa_loss", v.MaxASPALoss}} {
		if k.x < 0 || k.x >= 1 {
			p.errorf(key+"."+k.name, "want a fraction from 0 (no such rule) to below 1, such as 0.05 for 5%%, got %v", k.x)
		}
	}
	p.positive(key+".interval", v.Interval)
	if v.CAFile != "" {
		v.CAFile = p.path(v.CAFile)
		if pem, ok := p.readPEM(key+".ca_file", v.CAFile); ok {
			v.CAPEM = pem
		}
	}
	seen := map[string]bool{}
	v.TrustAnchors = nil
	for i, f := range v.TALs {
		f = p.path(f)
		v.TALs[i] = f
		ta, err := readTrustAnchor(f)
		if err != nil {
			p.errorf(key+".tals", "%v", err)
			continue
		}
		if seen[ta.Name] {
			p.errorf(key+".tals", "two TALs named %q: the trust anchors are named by the file name", ta.Name)
		}
		seen[ta.Name] = true
		v.TrustAnchors = append(v.TrustAnchors, ta)
	}
}

// readTrustAnchor reads a TAL and the TA certificate beside it, named like
// the last part of one of its URIs (none: the validator fetches it).
func readTrustAnchor(file string) (rpki.TrustAnchor, error) {
	b, err := readCapped(file, rpki.MaxTALSize)
	if err != nil {
		return rpki.TrustAnchor{}, fmt.Errorf("read TAL: %w", err)
	}
	tal, err := rpki.ParseTAL(b)
	if err != nil {
		return rpki.TrustAnchor{}, fmt.Errorf("TAL %s: %w", file, err)
	}
	ta := rpki.TrustAnchor{Name: strings.TrimSuffix(filepath.Base(file), ".tal"), TAL: tal}
	for _, u := range tal.URIs {
		name := path.Base(u)
		if name == "." || name == "/" || name == ".." {
			continue
		}
		cf := filepath.Join(filepath.Dir(file), name)
		cert, err := readCapped(cf, maxTACert)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return rpki.TrustAnchor{}, fmt.Errorf("TA certificate beside %s: %w", file, err)
		}
		ta.Cert, ta.CertFile = cert, cf
		break
	}
	return ta, nil
}
