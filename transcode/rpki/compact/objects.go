package compact

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// Object type OIDs in Meta.oid, and the hash algorithm of iMFTs.
var (
	oidROA      = rpki.OIDContentROA.String()
	oidASPA     = rpki.OIDContentASPA.String()
	oidManifest = rpki.OIDContentManifest.String()
)

// HashAlgorithm is ManifestHashes.hash_algorithm.
const HashAlgorithm = "SHA-256"

// marshal is the deterministic encoding of every compact message.
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		// Only invalid UTF-8 in a string field fails, and every string
		// here comes from a parsed certificate or a validated URI.
		panic(fmt.Sprintf("compact: marshal %T: %v", m, err))
	}
	return b
}

func timestamp(t time.Time) *irpkipb.Timestamp {
	return &irpkipb.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

func fromTimestamp(ts *irpkipb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return time.Unix(ts.Seconds, int64(ts.Nanos)).UTC()
}

// setSerial stores n as a uint64, or past 64 bits in big.
func setSerial(n *big.Int, small *uint64, large *[]byte) {
	if n.IsUint64() {
		*small = n.Uint64()
		return
	}
	*large = n.Bytes()
}

// serialBytes returns a serial stored by setSerial as big-endian bytes
// without leading zeros, as big.Int.Bytes gives.
func serialBytes(small uint64, large []byte) []byte {
	if len(large) > 0 {
		return large
	}
	return new(big.Int).SetUint64(small).Bytes()
}

// encodePrefix returns the content octets of p's RFC 3779 BIT STRING.
func encodePrefix(p netip.Prefix) []byte {
	bits := p.Bits()
	n := (bits + 7) / 8
	out := make([]byte, 1+n)
	out[0] = byte(8*n - bits)
	a := p.Addr().AsSlice()
	copy(out[1:], a[:n])
	return out
}

// decodePrefix parses the content octets of a BIT STRING prefix of the
// family fam.
func decodePrefix(b []byte, fam uint32) (netip.Prefix, error) {
	size := 4
	if fam == 2 {
		size = 16
	} else if fam != 1 {
		return netip.Prefix{}, fmt.Errorf("address family %d, want 1 or 2", fam)
	}
	if len(b) == 0 || len(b)-1 > size || b[0] > 7 || (len(b) == 1 && b[0] != 0) {
		return netip.Prefix{}, fmt.Errorf("malformed prefix %x", b)
	}
	bits := 8*(len(b)-1) - int(b[0])
	a := make([]byte, size)
	copy(a, b[1:])
	addr, _ := netip.AddrFromSlice(a)
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("prefix %x has bits set past its length", b)
	}
	return p, nil
}

// newROA returns the iROA of a validated ROA and its EE certificate.
func newROA(r rpki.ROA, ee *rpki.Cert) *irpkipb.ROA {
	out := &irpkipb.ROA{Asn: uint64(r.ASID), Meta: objectMeta(ee)}
	var v4, v6 *irpkipb.IpAndFam
	for _, p := range r.Prefixes {
		fam := &v4
		afi := uint32(1)
		if p.Prefix.Addr().Is6() {
			fam, afi = &v6, 2
		}
		if *fam == nil {
			*fam = &irpkipb.IpAndFam{Fam: afi}
		}
		e := &irpkipb.IpEntry{Ip: encodePrefix(p.Prefix)}
		if p.MaxLength != p.Prefix.Bits() {
			ml := uint32(p.MaxLength)
			e.Ml = &ml
		}
		(*fam).Ips = append((*fam).Ips, e)
	}
	for _, f := range []*irpkipb.IpAndFam{v4, v6} {
		if f != nil {
			out.IpAndFam = append(out.IpAndFam, f)
		}
	}
	return out
}

// objectMeta returns the Meta of an iROA or ASPA: the EE certificate's
// serial and validity; the type is left to the message (see Meta.oid).
func objectMeta(ee *rpki.Cert) *irpkipb.Meta {
	m := &irpkipb.Meta{NotBefore: timestamp(ee.NotBefore), NotAfter: timestamp(ee.NotAfter)}
	setSerial(ee.Serial, &m.Serial, &m.BigSerial)
	return m
}

// newASPA returns the compact ASPA of a validated ASPA.
func newASPA(a rpki.ASPA, ee *rpki.Cert) *irpkipb.ASPA {
	out := &irpkipb.ASPA{CustomerAsid: uint64(a.CustomerASID), Meta: objectMeta(ee)}
	for _, p := range a.Providers {
		out.Providers = append(out.Providers, &irpkipb.ASPAProvider{Asid: uint64(p.ASID), Afi: uint32(p.AFI)})
	}
	return out
}

// roaPrefixes returns the prefixes of an iROA.
func roaPrefixes(r *irpkipb.ROA) ([]rpki.ROAPrefix, error) {
	if r.Asn > 1<<32-1 {
		return nil, fmt.Errorf("AS%d is not a 32-bit AS number", r.Asn)
	}
	var out []rpki.ROAPrefix
	for _, f := range r.IpAndFam {
		for _, e := range f.Ips {
			p, err := decodePrefix(e.Ip, f.Fam)
			if err != nil {
				return nil, err
			}
			ml := p.Bits()
			if e.Ml != nil {
				ml = int(*e.Ml)
			}
			if ml < p.Bits() || ml > p.Addr().BitLen() {
				return nil, fmt.Errorf("prefix %s: maxLength %d out of range", p, ml)
			}
			out = append(out, rpki.ROAPrefix{Prefix: p, MaxLength: ml})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no prefixes")
	}
	return out, nil
}
