package rpki

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Resources are the Internet number resources of a certificate: the RFC 3779
// sbgp-ipAddrBlock and sbgp-autonomousSysNum extensions. A certificate
// carries at least one of them.
type Resources struct {
	IP IPResources
	AS ASResources
}

// Inherited returns resources that inherit every family present in r: what
// a manifest EE certificate or an inheriting child carries.
func (r Resources) Inherited() Resources {
	var out Resources
	v4, v6 := r.IP.families()
	out.IP.InheritV4 = v4
	out.IP.InheritV6 = v6
	out.AS.Inherit = !r.AS.Empty()
	return out
}

// IPRange is an inclusive range of addresses of one family.
type IPRange struct {
	Min, Max netip.Addr
}

// PrefixRange returns the range covered by p.
func PrefixRange(p netip.Prefix) IPRange {
	p = p.Masked()
	return IPRange{Min: p.Addr(), Max: lastAddr(p)}
}

// Prefix returns the prefix that covers exactly r, if there is one.
func (r IPRange) Prefix() (netip.Prefix, bool) {
	n, ok := rangePrefixLen(r.Min, r.Max)
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(r.Min, n), true
}

// String returns the prefix of r or "min-max".
func (r IPRange) String() string {
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.Min.String() + "-" + r.Max.String()
}

// IPResources is the content of the sbgp-ipAddrBlock extension. Ranges may
// be given in any order and may overlap: encoding sorts and merges them.
// A family inherits when its Inherit flag is set; ranges of an inheriting
// family are an error.
type IPResources struct {
	InheritV4, InheritV6 bool
	Ranges               []IPRange
}

// Empty reports whether r holds no family at all.
func (r IPResources) Empty() bool {
	v4, v6 := r.families()
	return !v4 && !v6
}

func (r IPResources) families() (v4, v6 bool) {
	v4, v6 = r.InheritV4, r.InheritV6
	for _, x := range r.Ranges {
		if x.Min.Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}

// Canonical returns the IPv4 and IPv6 ranges of r sorted and merged, as
// RFC 3779 section 2.2.3.6 requires.
func (r IPResources) Canonical() (v4, v6 []IPRange, err error) {
	for _, x := range r.Ranges {
		if !x.Min.IsValid() || !x.Max.IsValid() || x.Min.Is4() != x.Max.Is4() || x.Min.Zone() != "" || x.Max.Zone() != "" {
			return nil, nil, fmt.Errorf("invalid IP range %s", x)
		}
		if x.Max.Less(x.Min) {
			return nil, nil, fmt.Errorf("IP range %s has min above max", x)
		}
		if x.Min.Is4() {
			v4 = append(v4, x)
		} else {
			v6 = append(v6, x)
		}
	}
	if r.InheritV4 && len(v4) > 0 {
		return nil, nil, errors.New("IPv4 both inherits and lists ranges")
	}
	if r.InheritV6 && len(v6) > 0 {
		return nil, nil, errors.New("IPv6 both inherits and lists ranges")
	}
	return mergeIP(v4), mergeIP(v6), nil
}

func mergeIP(rs []IPRange) []IPRange {
	if len(rs) == 0 {
		return nil
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b IPRange) int {
		return cmp.Or(a.Min.Compare(b.Min), a.Max.Compare(b.Max))
	})
	out := rs[:1]
	for _, x := range rs[1:] {
		last := &out[len(out)-1]
		next := last.Max.Next() // invalid after the last address
		if !next.IsValid() || !next.Less(x.Min) {
			if last.Max.Less(x.Max) {
				last.Max = x.Max
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// Marshal returns the DER IPAddrBlocks, the value of the sbgp-ipAddrBlock
// extension, in canonical form.
func (r IPResources) Marshal() ([]byte, error) {
	v4, v6, err := r.Canonical()
	if err != nil {
		return nil, fmt.Errorf("encode IP resources: %w", err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addFamily(b, 1, r.InheritV4, v4)
		addFamily(b, 2, r.InheritV6, v6)
	})
	return b.Bytes()
}

func addFamily(b *cryptobyte.Builder, afi byte, inherit bool, rs []IPRange) {
	if !inherit && len(rs) == 0 {
		return
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString([]byte{0, afi})
		if inherit {
			b.AddASN1NULL()
			return
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, x := range rs {
				if n, ok := rangePrefixLen(x.Min, x.Max); ok {
					addBits(b, x.Min.AsSlice(), n)
					continue
				}
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					lo := x.Min.AsSlice()
					hi := x.Max.AsSlice()
					addBits(b, lo, significantBits(lo, 0))
					addBits(b, hi, significantBits(hi, 1))
				})
			}
		})
	})
}

// addBits adds the first n bits of a as a BIT STRING with zero padding.
func addBits(b *cryptobyte.Builder, a []byte, n int) {
	nb := (n + 7) / 8
	unused := nb*8 - n
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(unused))
		if nb == 0 {
			return
		}
		b.AddBytes(a[:nb-1])
		b.AddUint8(a[nb-1] & (0xff << unused))
	})
}

// significantBits returns the number of bits of a left after dropping its
// trailing bits equal to pad (0 or 1).
func significantBits(a []byte, pad byte) int {
	fill := byte(0)
	if pad == 1 {
		fill = 0xff
	}
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == fill {
			continue
		}
		for bit := 0; bit < 8; bit++ { // from the least significant bit
			if (a[i]>>bit)&1 != pad {
				return i*8 + 8 - bit
			}
		}
	}
	return 0
}

// rangePrefixLen returns the length of the prefix covering exactly
// [lo, hi], if there is one.
func rangePrefixLen(lo, hi netip.Addr) (int, bool) {
	a, z := lo.AsSlice(), hi.AsSlice()
	if len(a) != len(z) {
		return 0, false
	}
	n := 0
	for n < len(a)*8 && bit(a, n) == bit(z, n) {
		n++
	}
	for i := n; i < len(a)*8; i++ {
		if bit(a, i) != 0 || bit(z, i) != 1 {
			return 0, false
		}
	}
	return n, true
}

func bit(a []byte, i int) byte { return (a[i/8] >> (7 - i%8)) & 1 }

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

// ParseIPResources decodes the DER value of an sbgp-ipAddrBlock extension
// under the RFC 6487 profile (IPv4 and IPv6 only, no SAFI). Ranges are
// returned in encoded order, each prefix as its range; a caller that needs
// to check canonical form compares Marshal of the result with der.
func ParseIPResources(der []byte) (IPResources, error) {
	var r IPResources
	in := cryptobyte.String(der)
	var blocks cryptobyte.String
	if !in.ReadASN1(&blocks, cbasn1.SEQUENCE) || !in.Empty() {
		return r, errors.New("parse IP resources: malformed IPAddrBlocks")
	}
	for i := 0; !blocks.Empty(); i++ {
		var fam, afi cryptobyte.String
		if !blocks.ReadASN1(&fam, cbasn1.SEQUENCE) || !fam.ReadASN1(&afi, cbasn1.OCTET_STRING) {
			return r, fmt.Errorf("parse IP resources: family %d: malformed IPAddressFamily", i)
		}
		if len(afi) != 2 || afi[0] != 0 || (afi[1] != 1 && afi[1] != 2) {
			return r, fmt.Errorf("parse IP resources: family %d: unsupported addressFamily %x", i, []byte(afi))
		}
		size := 4
		if afi[1] == 2 {
			size = 16
		}
		if fam.PeekASN1Tag(cbasn1.NULL) {
			if !fam.ReadASN1(new(cryptobyte.String), cbasn1.NULL) || !fam.Empty() {
				return r, fmt.Errorf("parse IP resources: family %d: malformed inherit", i)
			}
			if afi[1] == 1 {
				r.InheritV4 = true
			} else {
				r.InheritV6 = true
			}
			continue
		}
		var items cryptobyte.String
		if !fam.ReadASN1(&items, cbasn1.SEQUENCE) || !fam.Empty() {
			return r, fmt.Errorf("parse IP resources: family %d: malformed addressesOrRanges", i)
		}
		for j := 0; !items.Empty(); j++ {
			var x IPRange
			var err error
			if items.PeekASN1Tag(cbasn1.SEQUENCE) {
				var rng cryptobyte.String
				var lo, hi []byte
				var nlo, nhi int
				if !items.ReadASN1(&rng, cbasn1.SEQUENCE) {
					err = errors.New("malformed IPAddressRange")
				} else if lo, nlo, err = readBits(&rng, size); err == nil {
					if hi, nhi, err = readBits(&rng, size); err == nil && !rng.Empty() {
						err = errors.New("trailing data in IPAddressRange")
					}
				}
				if err == nil {
					x = IPRange{Min: fillAddr(lo, nlo, size, 0), Max: fillAddr(hi, nhi, size, 1)}
					if x.Max.Less(x.Min) {
						err = fmt.Errorf("range %s has min above max", x)
					}
				}
			} else {
				var a []byte
				var n int
				if a, n, err = readBits(&items, size); err == nil {
					x = IPRange{Min: fillAddr(a, n, size, 0), Max: fillAddr(a, n, size, 1)}
				}
			}
			if err != nil {
				return r, fmt.Errorf("parse IP resources: family %d item %d: %w", i, j, err)
			}
			r.Ranges = append(r.Ranges, x)
		}
	}
	return r, nil
}

// readBits reads an IPAddress BIT STRING of at most size octets and returns
// its octets and its bit length.
func readBits(s *cryptobyte.String, size int) ([]byte, int, error) {
	var bs cryptobyte.String
	if !s.ReadASN1(&bs, cbasn1.BIT_STRING) || len(bs) == 0 {
		return nil, 0, errors.New("malformed IPAddress")
	}
	unused := int(bs[0])
	a := []byte(bs[1:])
	switch {
	case len(a) > size:
		return nil, 0, fmt.Errorf("IPAddress of %d octets exceeds %d", len(a), size)
	case unused > 7 || (len(a) == 0 && unused != 0):
		return nil, 0, fmt.Errorf("IPAddress with %d unused bits", unused)
	case len(a) > 0 && a[len(a)-1]&(1<<unused-1) != 0:
		return nil, 0, errors.New("IPAddress with non-zero padding bits")
	}
	return a, len(a)*8 - unused, nil
}

// fillAddr returns the address of size octets made of the first n bits of
// a, the remaining bits set to pad (0 or 1).
func fillAddr(a []byte, n, size int, pad byte) netip.Addr {
	buf := make([]byte, size)
	copy(buf, a)
	for i := n; i < size*8; i++ {
		if pad == 1 {
			buf[i/8] |= 1 << (7 - i%8)
		} else {
			buf[i/8] &^= 1 << (7 - i%8)
		}
	}
	out, _ := netip.AddrFromSlice(buf)
	return out
}
