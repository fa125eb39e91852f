package compact

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/big"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// checked is a group whose CA certificate verified.
type checked struct {
	cert *rpki.Cert // resources resolved
	// revoked holds the serials of the group's iMFT.
	revoked map[string]bool
	expires time.Time // earliest notAfter from the TA down
}

// Verify checks every group of s at now with trust and returns the VRPs and ASPAs,
// in rpki-client's order and format (see rpki.Result.WriteCSV): each iMFT
// signed by one of keys, current, for its CA's key and not older than the
// one prev (nil: none) holds for that CA; the CA certificates from each
// trust anchor down (signatures, validity, revocation by the issuer's iMFT,
// resources); every entry listed in its iMFT with its hash and nothing
// more; every iROA and ASPA current, not revoked and within its CA's
// resources. The first failure is returned as an *Error naming the group
// and entry. s must be self-contained: a group whose issuer's group is not
// in s is a failure here (SyncAll verifies several publications whose
// chains cross them, and skips such a group instead).
func (s *State) Verify(now time.Time, trust Trust, prev *State) (*rpki.Result, error) {
	var pg map[string]*irpkipb.CompactCA
	if prev != nil {
		pg = prev.groups
	}
	u := verifyUnion([]*State{s}, []bool{false}, []string{""}, now, trust, pg)
	for _, sk := range u.skips {
		if sk.missing {
			return nil, &Error{Group: sk.CA, Err: fmt.Errorf("%w: its issuer's group %s is not in the state", ErrMalformed, sk.Issuer)}
		}
	}
	if err := u.failed[0]; err != nil {
		return nil, err
	}
	return u.res, nil
}

func countExt(g *irpkipb.CompactCA, ext string) int {
	n := 0
	for _, e := range g.Entries {
		if strings.EqualFold(path.Ext(e.Name), ext) {
			n++
		}
	}
	return n
}

// entryError is an error about one entry of a group.
type entryError struct {
	name string
	err  error
}

func (e *entryError) Error() string { return e.name + ": " + e.err.Error() }

func entryOf(err error) string {
	if e, ok := err.(*entryError); ok {
		return e.name
	}
	return ""
}

func unwrapEntry(err error) error {
	if e, ok := err.(*entryError); ok {
		return e.err
	}
	return err
}

func checkTime(what string, from, until, now time.Time) error {
	if now.Before(from) || now.After(until) {
		return fmt.Errorf("%w: %s valid from %s to %s, not at %s", ErrExpired, what, from.Format(time.RFC3339), until.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

func verifyGroup(g *irpkipb.CompactCA, parent *checked, now time.Time, trust Trust, prev map[string]*irpkipb.CompactCA) (*checked, []rpki.VRPOutput, []rpki.ASPAOutput, error) {
	keys := trust.Keys
	m := g.Manifest
	if m == nil || m.Meta == nil || m.ManifestContent == nil || m.ManifestContent.Hashes == nil {
		return nil, nil, nil, fmt.Errorf("%w: no iMFT", ErrMalformed)
	}
	unsigned := proto.Clone(m).(*irpkipb.Manifest)
	unsigned.Signature, unsigned.MoreSignatures = nil, nil
	if err := verifySignature(keys, m.Signature, m.MoreSignatures, iMFTLabel, marshal(unsigned)); err != nil {
		return nil, nil, nil, fmt.Errorf("iMFT: %w", err)
	}
	mc := m.ManifestContent
	if m.Meta.Oid != oidManifest || mc.Hashes.HashAlgorithm != HashAlgorithm {
		return nil, nil, nil, fmt.Errorf("%w: iMFT of type %s with hashes %s, want %s and %s", ErrMalformed, m.Meta.Oid, mc.Hashes.HashAlgorithm, oidManifest, HashAlgorithm)
	}
	if err := checkTime("iMFT", fromTimestamp(m.Meta.NotBefore), fromTimestamp(m.Meta.NotAfter), now); err != nil {
		return nil, nil, nil, err
	}
	crlNext := fromTimestamp(mc.CrlNextUpdate)
	if err := checkTime("the iMFT's CRL", fromTimestamp(mc.CrlThisUpdate), crlNext, now); err != nil {
		return nil, nil, nil, err
	}
	number := new(big.Int).SetBytes(serialBytes(m.Meta.Serial, m.Meta.BigSerial))
	if old, ok := prev[g.Uri]; ok && old.Manifest != nil && old.Manifest.Meta != nil && bytes.Equal(old.Manifest.Meta.Ski, m.Meta.Ski) {
		if was := new(big.Int).SetBytes(serialBytes(old.Manifest.Meta.Serial, old.Manifest.Meta.BigSerial)); number.Cmp(was) < 0 {
			return nil, nil, nil, fmt.Errorf("%w: iMFT number %s is below %s, accepted before", ErrReplay, number, was)
		}
	}
	cert, expires, err := verifyCA(g, parent, now, trust)
	if err != nil {
		return nil, nil, nil, err
	}
	c := &checked{cert: cert, expires: expires, revoked: map[string]bool{}}
	for _, r := range mc.RevocedCerts {
		c.revoked[string(serialBytes(r.Serial, r.BigSerial))] = true
	}
	listed := make(map[string][]byte, len(mc.Hashes.HashList))
	for _, h := range mc.Hashes.HashList {
		listed[h.FileName] = h.Hash
	}
	if len(listed) > len(g.Entries) {
		present := make(map[string]bool, len(g.Entries))
		for _, e := range g.Entries {
			present[e.Name] = true
		}
		for _, h := range mc.Hashes.HashList {
			if !present[h.FileName] {
				return nil, nil, nil, &entryError{h.FileName, fmt.Errorf("%w: listed in the iMFT, missing from the group", ErrHash)}
			}
		}
	}
	chain := c.expires
	if crlNext.Before(chain) {
		chain = crlNext
	}
	var vrps []rpki.VRPOutput
	var aspas []rpki.ASPAOutput
	seen := make(map[string]bool, len(g.Entries))
	for _, e := range g.Entries {
		if seen[e.Name] {
			return nil, nil, nil, &entryError{e.Name, fmt.Errorf("%w: twice in the group", ErrMalformed)}
		}
		seen[e.Name] = true
		want, ok := listed[e.Name]
		if !ok {
			return nil, nil, nil, &entryError{e.Name, fmt.Errorf("%w: not listed in the iMFT of this CA", ErrHash)}
		}
		if h := sha256.Sum256(e.Content); !bytes.Equal(h[:], want) {
			return nil, nil, nil, &entryError{e.Name, fmt.Errorf("%w: SHA-256 %x, the iMFT says %x", ErrHash, h, want)}
		}
		v, a, err := verifyEntry(e, c, chain, now)
		if err != nil {
			return nil, nil, nil, &entryError{e.Name, err}
		}
		vrps = append(vrps, v...)
		if a != nil {
			aspas = append(aspas, *a)
		}
	}
	return c, vrps, aspas, nil
}

func checkMeta(m *irpkipb.Meta, oid string, c *checked, now time.Time) (time.Time, error) {
	if m == nil || m.Oid != "" && m.Oid != oid {
		return time.Time{}, fmt.Errorf("%w: no meta, or of a type other than %s", ErrMalformed, oid)
	}
	na := fromTimestamp(m.NotAfter)
	if err := checkTime("object", fromTimestamp(m.NotBefore), na, now); err != nil {
		return time.Time{}, err
	}
	if s := serialBytes(m.Serial, m.BigSerial); c.revoked[string(s)] {
		return time.Time{}, fmt.Errorf("serial %x is revoked by the iMFT", s)
	}
	return na, nil
}

func verifyEntry(e *irpkipb.SnapshotEntry, c *checked, chain, now time.Time) ([]rpki.VRPOutput, *rpki.ASPAOutput, error) {
	switch strings.ToLower(path.Ext(e.Name)) {
	case ".roa":
		var r irpkipb.ROA
		if err := proto.Unmarshal(e.Content, &r); err != nil {
			return nil, nil, fmt.Errorf("%w: iROA: %w", ErrMalformed, err)
		}
		na, err := checkMeta(r.Meta, oidROA, c, now)
		if err != nil {
			return nil, nil, err
		}
		ps, err := roaPrefixes(&r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: iROA: %w", ErrMalformed, err)
		}
		roa := rpki.ROA{ASID: uint32(r.Asn), Prefixes: ps}
		if err := c.cert.Resources.Contains(roa.Resources()); err != nil {
			return nil, nil, fmt.Errorf("iROA: %w", err)
		}
		exp := earliest(na, chain)
		out := make([]rpki.VRPOutput, len(ps))
		for i, p := range ps {
			out[i] = rpki.VRPOutput{VRP: rpki.VRP{ASN: roa.ASID, Prefix: p.Prefix, MaxLength: p.MaxLength}, Expires: exp}
		}
		return out, nil, nil
	case ".asa":
		var a irpkipb.ASPA
		if err := proto.Unmarshal(e.Content, &a); err != nil {
			return nil, nil, fmt.Errorf("%w: ASPA: %w", ErrMalformed, err)
		}
		na, err := checkMeta(a.Meta, oidASPA, c, now)
		if err != nil {
			return nil, nil, err
		}
		if a.CustomerAsid > 1<<32-1 {
			return nil, nil, fmt.Errorf("%w: ASPA: customer AS%d is not 32-bit", ErrMalformed, a.CustomerAsid)
		}
		asp := rpki.ASPA{CustomerASID: uint32(a.CustomerAsid)}
		for _, p := range a.Providers {
			if p.Asid > 1<<32-1 || p.Afi > 2 {
				return nil, nil, fmt.Errorf("%w: ASPA: provider AS%d AFI %d", ErrMalformed, p.Asid, p.Afi)
			}
			asp.Providers = append(asp.Providers, rpki.ASPAProvider{ASID: uint32(p.Asid), AFI: uint8(p.Afi)})
		}
		if err := c.cert.Resources.Contains(asp.Resources()); err != nil {
			return nil, nil, fmt.Errorf("ASPA: %w", err)
		}
		return nil, &rpki.ASPAOutput{CustomerASID: asp.CustomerASID, Providers: asp.Providers, Expires: earliest(na, chain)}, nil
	}
	return nil, nil, fmt.Errorf("%w: neither an iROA (.roa) nor an ASPA (.asa)", ErrMalformed)
}

// repository names a CA's repository as the validator counts them: its
// RRDP notification URI, or its rsync host and module.
func repository(c *rpki.Cert) string {
	if c.Notify != "" {
		return c.Notify
	}
	u, err := url.Parse(c.CARepository)
	if err != nil {
		return c.CARepository
	}
	mod, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	return "rsync://" + u.Host + "/" + path.Clean(mod)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
