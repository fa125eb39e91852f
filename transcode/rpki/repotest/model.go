package repotest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// Starts of the address space handed out to members.
const (
	firstV4 = 10 << 16    // 10.0.0.0 as a /24 index
	firstV6 = 0x2a10_0000 // 2a10::/32
	// v6Slots is the number of /48s in a member's /32: the most ROAs a
	// member can hold.
	v6Slots = 1 << 16
)

// handle names a CA in URIs and certificate subjects.
func (ca *caState) handle() string {
	if ca.Parent < 0 {
		return "ta"
	}
	return "ca-" + strconv.Itoa(ca.ID)
}

// dir is the rsync URI of a CA's publication point.
func (s *state) dir(ca *caState) string { return s.serverOf(ca).RsyncBase + ca.handle() + "/" }

func (s *state) taCertURI() string { return s.RsyncBase + "ta.cer" }

// notifyURI is the notification URI of the repository in which ca
// publishes.
func (s *state) notifyURI(ca *caState) string { return s.serverOf(ca).BaseURL + notificationFile }

func (ca *caState) mftName() string  { return ca.handle() + ".mft" }
func (ca *caState) crlName() string  { return ca.handle() + ".crl" }
func (ca *caState) certName() string { return ca.handle() + ".cer" }

func roaName(slot uint32) string { return "roa-" + strconv.FormatUint(uint64(slot), 10) + ".roa" }

func (ca *caState) aspaName() string {
	return "AS" + strconv.FormatUint(uint64(asBase(ca.ID)), 10) + ".asa"
}

// asBase is the first of the four AS numbers of a CA: private 16-bit ASes
// for the first CAs (AS64512 up), private 32-bit ones after.
func asBase(id int) uint32 {
	if id < 255 {
		return 64512 + 4*uint32(id)
	}
	return 4200000000 + 4*uint32(id)
}

// resources returns the RFC 3779 resources of a CA certificate.
func (ca *caState) resources() rpki.Resources {
	if ca.All {
		return rpki.Resources{
			IP: rpki.IPResources{Ranges: []rpki.IPRange{
				rpki.PrefixRange(netip.MustParsePrefix("0.0.0.0/0")),
				rpki.PrefixRange(netip.MustParsePrefix("::/0")),
			}},
			AS: rpki.ASResources{Ranges: []rpki.ASRange{{Min: 0, Max: 4294967295}}},
		}
	}
	as := asBase(ca.ID)
	last := v4Addr(ca.V4Base + ca.V4Size - 1).As4()
	last[3] = 255
	return rpki.Resources{
		IP: rpki.IPResources{Ranges: []rpki.IPRange{
			{Min: v4Addr(ca.V4Base), Max: netip.AddrFrom4(last)},
			rpki.PrefixRange(netip.PrefixFrom(v6Addr(ca.V6Base, 0), 32)),
		}},
		AS: rpki.ASResources{Ranges: []rpki.ASRange{{Min: as, Max: as + 3}}},
	}
}

// v4Addr returns the first address of the /24 with index i.
func v4Addr(i uint32) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], i<<8)
	return netip.AddrFrom4(a)
}

// v6Addr returns the first address of /48 number slot in the /32 top.
func v6Addr(top uint32, slot uint32) netip.Addr {
	var a [16]byte
	binary.BigEndian.PutUint32(a[:], top)
	binary.BigEndian.PutUint16(a[4:], uint16(slot))
	return netip.AddrFrom16(a)
}

// roa returns the content of a ROA of member ca. Its prefixes come from
// its slot; the version picks one of several shapes (one or two
// prefixes, IPv4, IPv6 or both, with or without maxLength) and the origin
// AS among the CA's four.
func (s *state) roa(ca *caState, r roaState) rpki.ROA {
	k := s.mix("roa", uint64(ca.ID), uint64(r.Slot), uint64(r.Ver)) % 5
	v4 := netip.PrefixFrom(v4Addr(ca.V4Base+r.Slot), 24)
	v6 := netip.PrefixFrom(v6Addr(ca.V6Base, r.Slot), 48)
	var ps []rpki.ROAPrefix
	if r.Slot < ca.V4Size {
		switch k {
		case 0:
			ps = []rpki.ROAPrefix{{Prefix: v4}}
		case 1:
			ps = []rpki.ROAPrefix{{Prefix: v4, MaxLength: 26}}
		case 2:
			hi := v4.Addr().As4()
			hi[3] = 128
			ps = []rpki.ROAPrefix{{Prefix: netip.PrefixFrom(v4.Addr(), 25)}, {Prefix: netip.PrefixFrom(netip.AddrFrom4(hi), 25)}}
		case 3:
			ps = []rpki.ROAPrefix{{Prefix: v4}, {Prefix: v6}}
		default:
			ps = []rpki.ROAPrefix{{Prefix: v6, MaxLength: 56}}
		}
	} else {
		switch k {
		case 0, 1:
			ps = []rpki.ROAPrefix{{Prefix: v6}}
		case 2:
			hi := v6.Addr().As16()
			hi[6] = 128
			ps = []rpki.ROAPrefix{{Prefix: netip.PrefixFrom(v6.Addr(), 49)}, {Prefix: netip.PrefixFrom(netip.AddrFrom16(hi), 49)}}
		default:
			ps = []rpki.ROAPrefix{{Prefix: v6, MaxLength: 64}}
		}
	}
	return rpki.ROA{ASID: asBase(ca.ID) + (r.Slot+r.Ver)%4, Prefixes: ps}
}

// aspa returns the ASPA of member ca, in the profile rpki-client 8.2
// implements (version 0).
func (s *state) aspa(ca *caState) rpki.ASPA {
	as := asBase(ca.ID)
	return rpki.ASPA{CustomerASID: as, Providers: []rpki.ASPAProvider{
		{ASID: as + 1},
		{ASID: as + 2, AFI: 1},
	}}
}

// VRPs returns the Validated ROA Payloads of the repository, sorted.
func (s *state) vrps() []rpki.VRP {
	var out []rpki.VRP
	for _, ca := range s.CAs {
		if ca == nil {
			continue
		}
		for _, r := range ca.ROAs {
			roa := s.roa(ca, r)
			for _, p := range roa.Prefixes {
				ml := p.MaxLength
				if ml == 0 {
					ml = p.Prefix.Bits()
				}
				out = append(out, rpki.VRP{ASN: roa.ASID, Prefix: p.Prefix, MaxLength: ml})
			}
		}
	}
	return rpki.SortVRPs(out)
}

// mix hashes the seed with a label and numbers into 64 bits: the
// generator's only source of pseudo-randomness besides the per-step
// generators seeded the same way.
func (s *state) mix(label string, nums ...uint64) uint64 {
	h := sha256.New()
	fmt.Fprintf(h, "repotest %d %s", s.Seed, label)
	var b [8]byte
	for _, n := range nums {
		binary.BigEndian.PutUint64(b[:], n)
		h.Write(b[:])
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// seedBytes is the seed of the derived keys.
func (s *state) seedBytes() []byte { return []byte("repotest-" + strconv.FormatInt(s.Seed, 10)) }

// sessionID returns the session id of the n-th session of repository
// sv, a UUID (version 4 layout) derived from the seed.
func (s *state) sessionID(sv *server, n int) string {
	label := fmt.Appendf(nil, "repotest %d session %d", s.Seed, n)
	if sv.Dir != "" {
		label = fmt.Appendf(nil, "repotest %d session %s %d", s.Seed, sv.Dir, n)
	}
	h := sha256.Sum256(label)
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// rrdpDir is the directory, relative to the directory of repository sv,
// of the snapshot and delta of a serial: rrdp/SESSION/SERIAL/RANDOM/, the
// random part derived from the seed so that nobody without it guesses the
// URI.
func (s *state) rrdpDir(sv *server, serial uint64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "repotest %d rrdp %s %d", s.Seed, sv.SessionID, serial))
	return fmt.Sprintf("rrdp/%s/%d/%x/", sv.SessionID, serial, h[:16])
}

func bigU(n uint64) *big.Int { return new(big.Int).SetUint64(n) }
