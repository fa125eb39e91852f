package compact

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// A group carries its CA either as the CA certificate's DER (the default:
// the client checks the chain from the trust anchor end to end) or, with
// Builder.OmitCertificates, as a CARecord inside its signed iMFT: the CA's
// resources, inherit resolved, and its validity, vouched for by the proxy.
// Trust anchors keep their certificate either way, so that a client that
// pins them (Trust.TAs) checks them.

// newCARecord returns the record of a validated CA certificate c, its
// resources resolved; issuerNotify is the issuer's rpkiNotify, which the
// record inherits when c's is the same.
func newCARecord(c *rpki.Cert, issuerNotify string) (*irpkipb.CARecord, error) {
	r := c.Resources
	if r.IP.InheritV4 || r.IP.InheritV6 || r.AS.Inherit {
		return nil, errors.New("CA record: resources not resolved")
	}
	v4, v6, err := r.IP.Canonical()
	if err != nil {
		return nil, fmt.Errorf("CA record: %w", err)
	}
	as, err := r.AS.Canonical()
	if err != nil {
		return nil, fmt.Errorf("CA record: %w", err)
	}
	rec := &irpkipb.CARecord{NotBefore: timestamp(c.NotBefore), NotAfter: timestamp(c.NotAfter)}
	for fam, rs := range [][]rpki.IPRange{1: v4, 2: v6} {
		if len(rs) == 0 {
			continue
		}
		f := &irpkipb.IPResources{Fam: uint32(fam)}
		for _, x := range rs {
			if p, ok := x.Prefix(); ok {
				f.Ranges = append(f.Ranges, &irpkipb.IPResource{Prefix: encodePrefix(p)})
				continue
			}
			f.Ranges = append(f.Ranges, &irpkipb.IPResource{Min: x.Min.AsSlice(), Max: x.Max.AsSlice()})
		}
		rec.Ip = append(rec.Ip, f)
	}
	for _, x := range as {
		a := &irpkipb.ASRange{Min: uint64(x.Min)}
		if x.Max != x.Min {
			m := uint64(x.Max)
			a.Max = &m
		}
		rec.As = append(rec.As, a)
	}
	if c.Notify != issuerNotify {
		n := c.Notify
		rec.RpkiNotify = &n
	}
	return rec, nil
}

// CARecordSum returns the SHA-256 of the CA record a lean group carries
// for c under an issuer whose rpkiNotify is issuerNotify: what the group
// takes from the chain, for a caller that rebuilds only the groups whose
// inputs changed.
func CARecordSum(c *rpki.Cert, issuerNotify string) ([32]byte, error) {
	rec, err := newCARecord(c, issuerNotify)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(marshal(rec)), nil
}

// recordResources decodes the resources of a CA record.
func recordResources(rec *irpkipb.CARecord) (rpki.Resources, error) {
	var out rpki.Resources
	for _, f := range rec.Ip {
		var size int
		switch f.Fam {
		case 1:
			size = 4
		case 2:
			size = 16
		default:
			return out, fmt.Errorf("address family %d, want 1 or 2", f.Fam)
		}
		for _, x := range f.Ranges {
			if len(x.Prefix) > 0 {
				p, err := decodePrefix(x.Prefix, f.Fam)
				if err != nil {
					return out, err
				}
				out.IP.Ranges = append(out.IP.Ranges, rpki.PrefixRange(p))
				continue
			}
			lo, ok1 := netip.AddrFromSlice(x.Min)
			hi, ok2 := netip.AddrFromSlice(x.Max)
			if !ok1 || !ok2 || len(x.Min) != size || len(x.Max) != size || hi.Less(lo) {
				return out, fmt.Errorf("malformed IP range %x-%x of family %d", x.Min, x.Max, f.Fam)
			}
			out.IP.Ranges = append(out.IP.Ranges, rpki.IPRange{Min: lo, Max: hi})
		}
	}
	for _, a := range rec.As {
		hi := a.Min
		if a.Max != nil {
			hi = *a.Max
		}
		if hi > 1<<32-1 || hi < a.Min {
			return out, fmt.Errorf("malformed AS range %d-%d", a.Min, hi)
		}
		out.AS.Ranges = append(out.AS.Ranges, rpki.ASRange{Min: uint32(a.Min), Max: uint32(hi)})
	}
	return out, nil
}

// verifyCA returns the CA of group g, its resources resolved, and the
// earliest notAfter from the trust anchor down: from its certificate,
// checked against parent's (nil: g is a trust anchor), or from the CA
// record of its iMFT, whose signature the caller has checked.
func verifyCA(g *irpkipb.CompactCA, parent *checked, now time.Time, trust Trust) (*rpki.Cert, time.Time, error) {
	m := g.Manifest
	switch {
	case g.Certificate != nil && m.Ca != nil:
		return nil, time.Time{}, fmt.Errorf("%w: both a CA certificate and a CA record", ErrMalformed)
	case m.Ca != nil:
		return recordCA(g, parent, now, trust)
	case g.Certificate == nil:
		return nil, time.Time{}, fmt.Errorf("%w: neither a CA certificate nor a CA record", ErrMalformed)
	}
	cert, err := rpki.ParseCert(g.Certificate)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: CA certificate: %w", ErrMalformed, err)
	}
	if !bytes.Equal(m.Meta.Ski, cert.SKI) {
		return nil, time.Time{}, fmt.Errorf("%w: the iMFT is for the key %x, the CA certificate's is %x", ErrSignature, m.Meta.Ski, cert.SKI)
	}
	if cert.CARepository != g.Repo {
		return nil, time.Time{}, fmt.Errorf("%w: repo %s, the CA certificate's caRepository is %s", ErrMalformed, g.Repo, cert.CARepository)
	}
	if parent == nil {
		if err := cert.VerifyTA(now); err != nil {
			return nil, time.Time{}, fmt.Errorf("trust anchor certificate: %w", err)
		}
		if len(trust.TAs) > 0 && !slices.ContainsFunc(trust.TAs, func(spki []byte) bool { return bytes.Equal(spki, cert.RawSPKI) }) {
			return nil, time.Time{}, fmt.Errorf("%w: the trust anchor certificate's key is not that of a TAL given", ErrSignature)
		}
		return cert, cert.NotAfter, nil
	}
	if parent.cert.Raw == nil {
		return nil, time.Time{}, fmt.Errorf("%w: a CA certificate under a CA record: its signature cannot be checked", ErrMalformed)
	}
	res, err := cert.VerifyIssued(parent.cert, func(s []byte) bool { return parent.revoked[string(s)] }, now)
	if err != nil {
		return nil, time.Time{}, &issuerError{fmt.Errorf("CA certificate: %w", err)}
	}
	resolved := *cert
	resolved.Resources = res
	return &resolved, earliest(cert.NotAfter, parent.expires), nil
}

// issuerError is a failure of a CA against its issuer (the signature,
// validity, revocation or resources of its certificate, or the resources
// of its CA record): across two publications that is no fault of the
// CA's own (verifyUnion).
type issuerError struct{ err error }

func (e *issuerError) Error() string { return e.err.Error() }
func (e *issuerError) Unwrap() error { return e.err }

// recordCA returns the CA a CA record describes: within its issuer's
// resources and current, as the validator found its certificate.
func recordCA(g *irpkipb.CompactCA, parent *checked, now time.Time, trust Trust) (*rpki.Cert, time.Time, error) {
	rec := g.Manifest.Ca
	if trust.RequireCertificates {
		return nil, time.Time{}, fmt.Errorf("%w: a CA record in place of the CA certificate, and CA certificates are required", ErrSignature)
	}
	if parent == nil {
		return nil, time.Time{}, fmt.Errorf("%w: a trust anchor without its certificate", ErrMalformed)
	}
	res, err := recordResources(rec)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: CA record: %w", ErrMalformed, err)
	}
	if err := parent.cert.Resources.Contains(res); err != nil {
		return nil, time.Time{}, &issuerError{fmt.Errorf("CA record: %w", err)}
	}
	nb, na := fromTimestamp(rec.NotBefore), fromTimestamp(rec.NotAfter)
	if err := checkTime("CA", nb, na, now); err != nil {
		return nil, time.Time{}, err
	}
	c := &rpki.Cert{NotBefore: nb, NotAfter: na, SKI: g.Manifest.Meta.Ski, IsCA: true, CARepository: g.Repo, Notify: parent.cert.Notify, Resources: res}
	if rec.RpkiNotify != nil {
		c.Notify = *rec.RpkiNotify
	}
	return c, earliest(na, parent.expires), nil
}
