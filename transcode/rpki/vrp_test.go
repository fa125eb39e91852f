package rpki

import (
	"net/netip"
	"strings"
	"testing"
)

func vrp(asn uint32, prefix string, maxLen int) VRP {
	return VRP{ASN: asn, Prefix: netip.MustParsePrefix(prefix), MaxLength: maxLen}
}

func TestParseVRPCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []VRP
		wantErr string
	}{
		{
			name: "generator format",
			in:   "ASN,IP Prefix,Max Length\nAS64512,10.0.0.0/24,24\n",
			want: []VRP{vrp(64512, "10.0.0.0/24", 24)},
		},
		{
			name: "rpki-client format, sorted and deduplicated",
			in: "ASN,IP Prefix,Max Length,Trust Anchor,Expires\n" +
				"AS64513,10.0.0.0/24,24,ta,1676395228\n" +
				"AS64512,2001:db8::/32,48,ta,1676395228\n" +
				"AS64512,10.0.1.0/24,24,ta,1676395228\n" +
				"AS64512,10.0.1.0/24,24,ta,1676395228\n",
			want: []VRP{vrp(64512, "10.0.1.0/24", 24), vrp(64512, "2001:db8::/32", 48), vrp(64513, "10.0.0.0/24", 24)},
		},
		{
			name: "fort format",
			in:   "ASN,Prefix,Max prefix length\r\nAS0,192.0.2.0/24,32\r\n",
			want: []VRP{vrp(0, "192.0.2.0/24", 32)},
		},
		{name: "empty", in: "", want: nil},
		{name: "no AS", in: "ASN,IP Prefix,Max Length\n64512,10.0.0.0/24,24\n", wantErr: "line 2: asn"},
		{name: "asn too big", in: "AS4294967296,10.0.0.0/24,24\n", wantErr: "line 1: asn"},
		{name: "host bits", in: "AS1,10.0.0.1/24,24\n", wantErr: "line 1: prefix 10.0.0.1/24 has host bits set"},
		{name: "max length below prefix", in: "AS1,10.0.0.0/24,23\n", wantErr: "line 1: max length 23 out of range 24-32"},
		{name: "max length above address", in: "AS1,2001:db8::/32,129\n", wantErr: "line 1: max length 129 out of range"},
		{name: "two fields", in: "AS1,10.0.0.0/24\n", wantErr: "line 1: want at least 3 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVRPCSV([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := DiffVRPs(got, tt.want, 0); d != "" || len(got) != len(tt.want) {
				t.Errorf("got %v, want %v: %s", got, tt.want, d)
			}
		})
	}
}

func TestParseVRPJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []VRP
		wantErr string
	}{
		{
			name: "rpki-client format, sorted and deduplicated",
			in: `{"metadata": {"roas": 3}, "roas": [
				{ "asn": 64513, "prefix": "10.0.0.0/24", "maxLength": 24, "ta": "ta", "expires": 1676395228 },
				{ "asn": 64512, "prefix": "2001:db8::/32", "maxLength": 48, "ta": "ta", "expires": 1676395228 },
				{ "asn": 64512, "prefix": "2001:db8::/32", "maxLength": 48, "ta": "ta", "expires": 1676395228 }],
				"provider_authorizations": {"ipv4": []}}`,
			want: []VRP{vrp(64512, "2001:db8::/32", 48), vrp(64513, "10.0.0.0/24", 24)},
		},
		{name: "no roas", in: `{"metadata": {}}`, want: nil},
		{name: "not json", in: `roas`, wantErr: "parse vrp json"},
		{name: "bad prefix", in: `{"roas": [{"asn": 1, "prefix": "10.0.0/24", "maxLength": 24}]}`, wantErr: "roas[0]"},
		{name: "host bits", in: `{"roas": [{"asn": 1, "prefix": "10.0.0.1/24", "maxLength": 24}]}`, wantErr: "roas[0]: prefix 10.0.0.1/24 has host bits set"},
		{name: "max length", in: `{"roas": [{"asn": 1, "prefix": "10.0.0.0/24", "maxLength": 8}]}`, wantErr: "roas[0]: max length 8 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVRPJSON([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := DiffVRPs(got, tt.want, 0); d != "" || len(got) != len(tt.want) {
				t.Errorf("got %v, want %v: %s", got, tt.want, d)
			}
		})
	}
}

func TestDiffVRPs(t *testing.T) {
	a, b, c := vrp(1, "10.0.0.0/8", 8), vrp(2, "10.0.0.0/8", 8), vrp(3, "10.0.0.0/8", 8)
	tests := []struct {
		name      string
		got, want []VRP
		limit     int
		diff      string
	}{
		{"equal", []VRP{b, a}, []VRP{a, b}, 0, ""},
		{"both empty", nil, nil, 0, ""},
		{"missing and extra", []VRP{a, c}, []VRP{a, b}, 0,
			"got 2 VRPs, want 2: 1 missing, 1 unexpected\n- AS2,10.0.0.0/8,8\n+ AS3,10.0.0.0/8,8\n"},
		{"limit", nil, []VRP{a, b, c}, 2,
			"got 0 VRPs, want 3: 3 missing, 0 unexpected\n- AS1,10.0.0.0/8,8\n- AS2,10.0.0.0/8,8\n- ... 1 more\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DiffVRPs(tt.got, tt.want, tt.limit); got != tt.diff {
				t.Errorf("got %q, want %q", got, tt.diff)
			}
		})
	}
}

func TestVRPCompare(t *testing.T) {
	sorted := []VRP{
		vrp(1, "10.0.0.0/8", 8),
		vrp(1, "10.0.0.0/8", 16),
		vrp(1, "10.0.0.0/16", 16),
		vrp(1, "11.0.0.0/8", 8),
		vrp(1, "2001:db8::/32", 32),
		vrp(2, "0.0.0.0/0", 0),
	}
	for i := range sorted {
		for j := range sorted {
			got := sorted[i].Compare(sorted[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
}
