package compact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// TestCARecord encodes CA certificates' resources and rpkiNotify as CA
// records and decodes them again.
func TestCARecord(t *testing.T) {
	r := func(lo, hi string) rpki.IPRange {
		return rpki.IPRange{Min: netip.MustParseAddr(lo), Max: netip.MustParseAddr(hi)}
	}
	res := rpki.Resources{
		IP: rpki.IPResources{Ranges: []rpki.IPRange{
			r("10.0.0.0", "10.0.29.255"), rpki.PrefixRange(netip.MustParsePrefix("192.0.2.0/24")),
			rpki.PrefixRange(netip.MustParsePrefix("2001:db8::/32")), r("2001:db9::1", "2001:db9::5"),
		}},
		AS: rpki.ASResources{Ranges: []rpki.ASRange{{Min: 64496, Max: 64496}, {Min: 65536, Max: 65551}}},
	}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, notify, issuer string
		want                 *string // the record's rpki_notify
	}{
		{"the issuer's notify", "https://a/n.xml", "https://a/n.xml", nil},
		{"its own", "https://b/n.xml", "https://a/n.xml", ptr("https://b/n.xml")},
		{"none under an issuer with one", "", "https://a/n.xml", ptr("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &rpki.Cert{Resources: res, Notify: tc.notify, NotBefore: nb, NotAfter: nb.Add(time.Hour)}
			rec, err := newCARecord(c, tc.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.RpkiNotify, tc.want) {
				t.Errorf("rpki_notify %v, want %v", rec.RpkiNotify, tc.want)
			}
			back, err := recordResources(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.Contains(res); err != nil {
				t.Errorf("the record's resources do not hold the certificate's: %v", err)
			}
			if err := res.Contains(back); err != nil {
				t.Errorf("the record's resources exceed the certificate's: %v", err)
			}
			if got := fromTimestamp(rec.NotAfter); !got.Equal(c.NotAfter) {
				t.Errorf("notAfter %v, want %v", got, c.NotAfter)
			}
		})
	}
	inherit := &rpki.Cert{Resources: rpki.Resources{AS: rpki.ASResources{Inherit: true}}}
	if _, err := newCARecord(inherit, ""); err == nil || !strings.Contains(err.Error(), "not resolved") {
		t.Errorf("got %v, want inherit refused", err)
	}
}

// TestCARecordMalformed decodes broken CA records: each fails saying what.
func TestCARecordMalformed(t *testing.T) {
	ten := uint64(10)
	for _, tc := range []struct {
		name string
		rec  *irpkipb.CARecord
		want string
	}{
		{"family 3", &irpkipb.CARecord{Ip: []*irpkipb.IPResources{{Fam: 3}}}, "address family 3"},
		{"IPv4 range of IPv6 addresses", &irpkipb.CARecord{Ip: []*irpkipb.IPResources{{Fam: 1, Ranges: []*irpkipb.IPResource{{Min: make([]byte, 16), Max: make([]byte, 16)}}}}}, "malformed IP range"},
		{"range min above max", &irpkipb.CARecord{Ip: []*irpkipb.IPResources{{Fam: 1, Ranges: []*irpkipb.IPResource{{Min: []byte{10, 0, 0, 2}, Max: []byte{10, 0, 0, 1}}}}}}, "malformed IP range"},
		{"prefix with bits past its length", &irpkipb.CARecord{Ip: []*irpkipb.IPResources{{Fam: 1, Ranges: []*irpkipb.IPResource{{Prefix: []byte{7, 0xff}}}}}}, "bits set past its length"},
		{"AS range down", &irpkipb.CARecord{As: []*irpkipb.ASRange{{Min: 11, Max: &ten}}}, "malformed AS range 11-10"},
		{"AS past 32 bits", &irpkipb.CARecord{As: []*irpkipb.ASRange{{Min: 1 << 32}}}, "malformed AS range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := recordResources(tc.rec); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCAOmitted applies deltas that leave out a CA record the group did
// not have, or that send one while saying it is left out: both refused.
func TestCAOmitted(t *testing.T) {
	rec := &irpkipb.CARecord{As: []*irpkipb.ASRange{{Min: 1}}}
	mft := func(ca *irpkipb.CARecord) *irpkipb.Manifest {
		return &irpkipb.Manifest{Meta: &irpkipb.Meta{}, ManifestContent: &irpkipb.ManifestContent{Hashes: &irpkipb.ManifestHashes{}}, Ca: ca}
	}
	for _, tc := range []struct {
		name   string
		before *irpkipb.CompactCA
		delta  *irpkipb.CompactDeltaCA
	}{
		{"a group with a certificate", &irpkipb.CompactCA{Uri: "g", Certificate: []byte{1}, Manifest: mft(nil)}, &irpkipb.CompactDeltaCA{Uri: "g", Manifest: mft(nil), CaOmitted: true}},
		{"a new group", nil, &irpkipb.CompactDeltaCA{Uri: "g", Manifest: mft(nil), CaOmitted: true}},
		{"a record sent", &irpkipb.CompactCA{Uri: "g", Manifest: mft(rec)}, &irpkipb.CompactDeltaCA{Uri: "g", Manifest: mft(rec), CaOmitted: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{Session: "s", Serial: 1, groups: map[string]*irpkipb.CompactCA{}}
			if tc.before != nil {
				st.groups["g"] = tc.before
			}
			data := marshal(&irpkipb.CompactDelta{Serial: 2, Session: "s", Cas: []*irpkipb.CompactDeltaCA{tc.delta}, Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_DELTA})
			h := sha256.Sum256(data)
			_, err := st.ApplyDelta(data, hex.EncodeToString(h[:]))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "g: malformed: CA record omitted") {
				t.Errorf("got %v, want the omitted CA record refused", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }
