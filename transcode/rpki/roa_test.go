package rpki

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
)

func TestROAMarshal(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		roa  ROA
		want string
	}{
		{
			name: "one prefix with maxLength",
			roa:  ROA{ASID: 64496, Prefixes: []ROAPrefix{{Prefix: p("10.0.0.0/8"), MaxLength: 16}}},
			want: "3018020300fbf03011300f0402000130093007030200" + "0a020110",
		},
		{
			name: "maxLength equal to length is omitted",
			roa:  ROA{ASID: 1, Prefixes: []ROAPrefix{{Prefix: p("10.0.0.0/8"), MaxLength: 8}}},
			want: "3013020101300e300c04020001300630040302000a",
		},
		{
			name: "duplicates removed, IPv4 first",
			roa: ROA{ASID: 1, Prefixes: []ROAPrefix{
				{Prefix: p("2001:db8::/32")}, {Prefix: p("10.0.0.0/8")}, {Prefix: p("10.0.0.0/8"), MaxLength: 8},
			}},
			want: "3024020101301f300c04020001300630040302000a300f040200023009300703050020010db8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.roa.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(der); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestROACanonicalOrder(t *testing.T) {
	p := netip.MustParsePrefix
	roa := ROA{ASID: 1, Prefixes: []ROAPrefix{
		{Prefix: p("2001:db8::/32"), MaxLength: 48},
		{Prefix: p("192.168.0.0/16")},
		{Prefix: p("10.0.0.0/16"), MaxLength: 24},
		{Prefix: p("10.0.0.0/8")},
		{Prefix: p("10.0.0.0/16"), MaxLength: 20},
		{Prefix: p("2001:db8::/32"), MaxLength: 48},
	}}
	got, err := roa.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := []ROAPrefix{
		{p("10.0.0.0/8"), 8}, {p("10.0.0.0/16"), 20}, {p("10.0.0.0/16"), 24},
		{p("192.168.0.0/16"), 16}, {p("2001:db8::/32"), 48},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestROAErrors(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		roa  ROA
	}{
		{"no prefixes", ROA{ASID: 1}},
		{"maxLength below length", ROA{ASID: 1, Prefixes: []ROAPrefix{{Prefix: p("10.0.0.0/16"), MaxLength: 8}}}},
		{"maxLength above 32", ROA{ASID: 1, Prefixes: []ROAPrefix{{Prefix: p("10.0.0.0/16"), MaxLength: 33}}}},
		{"unmasked prefix", ROA{ASID: 1, Prefixes: []ROAPrefix{{Prefix: p("10.0.0.1/16")}}}},
		{"invalid prefix", ROA{ASID: 1, Prefixes: []ROAPrefix{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if der, err := tt.roa.Marshal(); err == nil {
				t.Errorf("got %x, want an error", der)
			}
		})
	}
}

func TestASPAMarshal(t *testing.T) {
	tests := []struct {
		name string
		aspa ASPA
		want string
	}{
		{
			name: "version 0 with AFI limit",
			aspa: ASPA{CustomerASID: 64497, Providers: []ASPAProvider{{ASID: 65001}, {ASID: 64999, AFI: 1}}},
			want: "3019020300fbf130123009020300fde7040200013005020300fde9",
		},
		{
			name: "version 1",
			aspa: ASPA{Version: 1, CustomerASID: 64497, Providers: []ASPAProvider{{ASID: 65001}, {ASID: 64999}}},
			want: "3016a003020101020300fbf1300a020300fde7020300fde9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.aspa.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(der); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestASPAErrors(t *testing.T) {
	tests := []struct {
		name string
		aspa ASPA
	}{
		{"no providers", ASPA{CustomerASID: 1}},
		{"customer as provider", ASPA{CustomerASID: 1, Providers: []ASPAProvider{{ASID: 1}}}},
		{"duplicate provider", ASPA{CustomerASID: 1, Providers: []ASPAProvider{{ASID: 2}, {ASID: 2, AFI: 1}}}},
		{"AFI in version 1", ASPA{Version: 1, CustomerASID: 1, Providers: []ASPAProvider{{ASID: 2, AFI: 2}}}},
		{"bad AFI", ASPA{CustomerASID: 1, Providers: []ASPAProvider{{ASID: 2, AFI: 3}}}},
		{"version 2", ASPA{Version: 2, CustomerASID: 1, Providers: []ASPAProvider{{ASID: 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if der, err := tt.aspa.Marshal(); err == nil {
				t.Errorf("got %x, want an error", der)
			}
		})
	}
}
