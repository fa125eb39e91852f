package rpki

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
)

func pr(s string) IPRange { return PrefixRange(netip.MustParsePrefix(s)) }

func rng(lo, hi string) IPRange {
	return IPRange{netip.MustParseAddr(lo), netip.MustParseAddr(hi)}
}

func TestIPResourcesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   IPResources
		want string    // hex DER, checked when set
		back []IPRange // ranges decoded back, in encoded order
		v4   bool      // decoded InheritV4
		v6   bool      // decoded InheritV6
	}{
		{
			name: "one prefix",
			in:   IPResources{Ranges: []IPRange{pr("10.0.0.0/8")}},
			want: "300c300a0402000130040302000a",
			back: []IPRange{pr("10.0.0.0/8")},
		},
		{
			name: "range not a prefix",
			in:   IPResources{Ranges: []IPRange{rng("10.1.0.0", "10.2.3.255")}},
			want: "3015301304020001300d300b0303000a010304020a0200",
			back: []IPRange{rng("10.1.0.0", "10.2.3.255")},
		},
		{
			name: "zero-length min and max",
			in:   IPResources{Ranges: []IPRange{rng("0.0.0.0", "255.255.255.254"), rng("::", "::")}},
			back: []IPRange{rng("0.0.0.0", "255.255.255.254"), pr("::/128")},
		},
		{
			name: "adjacent prefixes merge into one prefix",
			in:   IPResources{Ranges: []IPRange{pr("10.128.0.0/9"), pr("10.0.0.0/9")}},
			want: "300c300a0402000130040302000a",
			back: []IPRange{pr("10.0.0.0/8")},
		},
		{
			name: "overlap and order across families",
			in: IPResources{Ranges: []IPRange{
				pr("2001:db8::/32"), pr("192.168.0.0/16"), pr("10.0.0.0/8"), pr("10.1.0.0/16"), pr("192.169.0.0/16"),
			}},
			back: []IPRange{pr("10.0.0.0/8"), pr("192.168.0.0/15"), pr("2001:db8::/32")},
		},
		{
			name: "whole space",
			in:   IPResources{Ranges: []IPRange{pr("0.0.0.0/0"), pr("::/0")}},
			want: "301630090402000130030301003009040200023003030100",
			back: []IPRange{pr("0.0.0.0/0"), pr("::/0")},
		},
		{
			name: "inherit both",
			in:   IPResources{InheritV4: true, InheritV6: true},
			want: "301030060402000105003006040200020500",
			v4:   true, v6: true,
		},
		{
			name: "inherit IPv4, list IPv6",
			in:   IPResources{InheritV4: true, Ranges: []IPRange{pr("2001:db8::/32")}},
			back: []IPRange{pr("2001:db8::/32")},
			v4:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && hex.EncodeToString(der) != tt.want {
				t.Errorf("got DER %x, want %s", der, tt.want)
			}
			got, err := ParseIPResources(der)
			if err != nil {
				t.Fatalf("parse %x: %v", der, err)
			}
			if !slices.Equal(got.Ranges, tt.back) {
				t.Errorf("got ranges %v, want %v", got.Ranges, tt.back)
			}
			if got.InheritV4 != tt.v4 || got.InheritV6 != tt.v6 {
				t.Errorf("got inherit v4 %v v6 %v, want %v %v", got.InheritV4, got.InheritV6, tt.v4, tt.v6)
			}
			again, err := got.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, der) {
				t.Errorf("re-encoding gave %x, want %x", again, der)
			}
		})
	}
}

func TestIPRangePrefix(t *testing.T) {
	tests := []struct {
		in   IPRange
		want string // "" when not a prefix
	}{
		{pr("10.0.0.0/8"), "10.0.0.0/8"},
		{rng("10.0.0.0", "10.0.0.0"), "10.0.0.0/32"},
		{rng("10.0.0.1", "10.0.0.2"), ""},
		{rng("10.0.0.0", "10.0.2.255"), ""},
		{pr("::/0"), "::/0"},
		{pr("2001:db8:8000::/33"), "2001:db8:8000::/33"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			p, ok := tt.in.Prefix()
			got := ""
			if ok {
				got = p.String()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIPResourcesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   IPResources
	}{
		{"min above max", IPResources{Ranges: []IPRange{rng("10.0.0.2", "10.0.0.1")}}},
		{"mixed families", IPResources{Ranges: []IPRange{rng("10.0.0.0", "::1")}}},
		{"inherit and ranges", IPResources{InheritV4: true, Ranges: []IPRange{pr("10.0.0.0/8")}}},
		{"zero range", IPResources{Ranges: []IPRange{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if der, err := tt.in.Marshal(); err == nil {
				t.Errorf("got %x, want an error", der)
			}
		})
	}
}

func TestParseIPResourcesErrors(t *testing.T) {
	tests := []struct {
		name string
		der  string
	}{
		{"empty", ""},
		{"trailing data", "300c300a0402000130040302000a00"},
		{"SAFI", "300d300b040300010130040302000a"},
		{"unknown AFI", "300c300a0402000330040302000a"},
		{"padding bits set", "300c300a04020001300403020101"},
		{"too many unused bits", "300c300a04020001300403020801"},
		{"address too long", "3010300e0402000130080306000102030405"},
		{"range min above max", "3015301304020001300d300b0303000a020304020a0100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := hex.DecodeString(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := ParseIPResources(der); err == nil {
				t.Errorf("got %+v, want an error", r)
			}
		})
	}
}

func TestASResourcesRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   ASResources
		want string
		back []ASRange
	}{
		{"one id", ASResources{Ranges: []ASRange{{64496, 64496}}}, "3009a0073005020300fbf0", []ASRange{{64496, 64496}}},
		{"merge adjacent", ASResources{Ranges: []ASRange{{10, 20}, {1, 9}, {30, 30}, {31, 31}}}, "3014a01230103006020101020114300602011e02011f", []ASRange{{1, 20}, {30, 31}}},
		{"full range", ASResources{Ranges: []ASRange{{0, 4294967295}}}, "", []ASRange{{0, 4294967295}}},
		{"inherit", ASResources{Inherit: true}, "3004a0020500", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.in.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && hex.EncodeToString(der) != tt.want {
				t.Errorf("got DER %x, want %s", der, tt.want)
			}
			got, err := ParseASResources(der)
			if err != nil {
				t.Fatalf("parse %x: %v", der, err)
			}
			if !slices.Equal(got.Ranges, tt.back) || got.Inherit != tt.in.Inherit {
				t.Errorf("got %+v, want ranges %v inherit %v", got, tt.back, tt.in.Inherit)
			}
		})
	}
}

func TestParseASResourcesErrors(t *testing.T) {
	tests := []struct {
		name string
		der  string
	}{
		{"empty", ""},
		{"no asnum", "3000"},
		{"rdi", "3008a0020500a1020500"},
		{"negative", "3007a0053003020180"},
		{"too large", "300ba009300702050100000000"},
		{"range min above max", "300ca00a30083006020102020101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := hex.DecodeString(tt.der)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := ParseASResources(der); err == nil {
				t.Errorf("got %+v, want an error", r)
			}
		})
	}
}

func TestInherited(t *testing.T) {
	r := Resources{IP: IPResources{Ranges: []IPRange{pr("10.0.0.0/8")}}, AS: ASResources{Ranges: []ASRange{{1, 1}}}}
	got := r.Inherited()
	want := Resources{IP: IPResources{InheritV4: true}, AS: ASResources{Inherit: true}}
	if got.IP.InheritV4 != want.IP.InheritV4 || got.IP.InheritV6 || got.AS.Inherit != want.AS.Inherit || len(got.IP.Ranges) != 0 {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func FuzzParseIPResources(f *testing.F) {
	for _, s := range []string{"300c300a0402000130040302000a", "3015301304020001300d300b0303000a010304020a0200", "301030060402000105003006040200020500"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseIPResources(der)
		if err != nil {
			return
		}
		enc, err := r.Marshal()
		if err != nil {
			return // e.g. inherit and ranges for one family
		}
		r2, err := ParseIPResources(enc)
		if err != nil {
			t.Fatalf("re-parse of %x: %v", enc, err)
		}
		enc2, err := r2.Marshal()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding not stable: %x then %x (%v)", enc, enc2, err)
		}
	})
}

func FuzzParseASResources(f *testing.F) {
	for _, s := range []string{"3009a0073005020300fbf0", "3004a0020500"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParseASResources(der)
		if err != nil || r.Empty() {
			return
		}
		enc, err := r.Marshal()
		if err != nil {
			t.Fatalf("encode parsed %+v: %v", r, err)
		}
		r2, err := ParseASResources(enc)
		if err != nil {
			t.Fatalf("re-parse of %x: %v", enc, err)
		}
		if c1, _ := r.Canonical(); !slices.Equal(c1, r2.Ranges) {
			t.Fatalf("got %v after round trip, want %v", r2.Ranges, c1)
		}
	})
}
