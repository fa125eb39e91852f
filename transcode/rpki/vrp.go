package rpki

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// VRP is a Validated ROA Payload (RFC 6811, RFC 9582).
type VRP struct {
	ASN       uint32
	Prefix    netip.Prefix
	MaxLength int
}

// String formats v as a CSV row: "AS64512,10.0.0.0/24,24".
func (v VRP) String() string {
	return "AS" + strconv.FormatUint(uint64(v.ASN), 10) + "," + v.Prefix.String() + "," + strconv.Itoa(v.MaxLength)
}

// Compare orders VRPs by ASN, then prefix (IPv4 before IPv6, then address,
// then length), then maximum length.
func (v VRP) Compare(w VRP) int {
	if c := cmp.Compare(v.ASN, w.ASN); c != 0 {
		return c
	}
	if c := v.Prefix.Addr().Compare(w.Prefix.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Prefix.Bits(), w.Prefix.Bits()); c != 0 {
		return c
	}
	return cmp.Compare(v.MaxLength, w.MaxLength)
}

// SortVRPs sorts vrps and removes duplicates.
func SortVRPs(vrps []VRP) []VRP {
	slices.SortFunc(vrps, VRP.Compare)
	return slices.Compact(vrps)
}

// VRPCSVHeader is the header line of the VRP CSV format.
const VRPCSVHeader = "ASN,IP Prefix,Max Length"

// WriteVRPCSV writes vrps, sorted and without duplicates, in the CSV format
// of the repository generator's expected-vrps.csv: the header
// "ASN,IP Prefix,Max Length", then one "AS64512,10.0.0.0/24,24" row per VRP.
func WriteVRPCSV(w io.Writer, vrps []VRP) error {
	vrps = SortVRPs(slices.Clone(vrps))
	bw := bufio.NewWriter(w)
	bw.WriteString(VRPCSVHeader + "\n")
	for _, v := range vrps {
		bw.WriteString(v.String())
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write vrp csv: %w", err)
	}
	return nil
}

// ParseVRPCSV parses a VRP CSV: the format of WriteVRPCSV, and also the
// CSV output of rpki-client ("ASN,IP Prefix,Max Length,Trust Anchor,Expires")
// and of FORT ("ASN,Prefix,Max prefix length"); columns after the third are
// ignored. A first line whose first field is "ASN" is a header. The result
// is sorted and without duplicates.
func ParseVRPCSV(data []byte) ([]VRP, error) {
	var vrps []VRP
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || (i == 0 && strings.HasPrefix(s, "ASN,")) {
			continue
		}
		v, err := parseVRP(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		vrps = append(vrps, v)
	}
	return SortVRPs(vrps), nil
}

// ParseVRPJSON parses the VRPs of a JSON output in rpki-client's format
// (WriteJSON's, rpki-client's -j): the "roas" array; the rest is
// ignored. The result is sorted and without duplicates.
func ParseVRPJSON(data []byte) ([]VRP, error) {
	var doc struct {
		ROAs []struct {
			ASN       uint32 `json:"asn"`
			Prefix    string `json:"prefix"`
			MaxLength int    `json:"maxLength"`
		} `json:"roas"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse vrp json: %w", err)
	}
	vrps := make([]VRP, 0, len(doc.ROAs))
	for i, r := range doc.ROAs {
		p, err := netip.ParsePrefix(r.Prefix)
		if err != nil {
			return nil, fmt.Errorf("parse vrp json: roas[%d]: %w", i, err)
		}
		v := VRP{ASN: r.ASN, Prefix: p, MaxLength: r.MaxLength}
		if err := v.check(); err != nil {
			return nil, fmt.Errorf("parse vrp json: roas[%d]: %w", i, err)
		}
		vrps = append(vrps, v)
	}
	return SortVRPs(vrps), nil
}

func parseVRP(s string) (VRP, error) {
	f := strings.Split(s, ",")
	if len(f) < 3 {
		return VRP{}, fmt.Errorf("want at least 3 fields, got %d in %q", len(f), s)
	}
	asn, ok := strings.CutPrefix(strings.TrimSpace(f[0]), "AS")
	if !ok {
		return VRP{}, fmt.Errorf("asn %q: want prefix AS", f[0])
	}
	n, err := strconv.ParseUint(asn, 10, 32)
	if err != nil {
		return VRP{}, fmt.Errorf("asn %q: %w", f[0], err)
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(f[1]))
	if err != nil {
		return VRP{}, fmt.Errorf("prefix: %w", err)
	}
	ml, err := strconv.Atoi(strings.TrimSpace(f[2]))
	if err != nil {
		return VRP{}, fmt.Errorf("max length %q: %w", f[2], err)
	}
	v := VRP{ASN: uint32(n), Prefix: p, MaxLength: ml}
	return v, v.check()
}

// check reports a prefix with host bits set or a max length out of its
// range.
func (v VRP) check() error {
	p, ml := v.Prefix, v.MaxLength
	if p != p.Masked() {
		return fmt.Errorf("prefix %s has host bits set", p)
	}
	if ml < p.Bits() || ml > p.Addr().BitLen() {
		return fmt.Errorf("max length %d out of range %d-%d for %s", ml, p.Bits(), p.Addr().BitLen(), p)
	}
	return nil
}

// DiffVRPs compares two VRP sets and returns "" when they are equal, or a
// readable report: the counts and every VRP missing from got ("- ") or not
// in want ("+ "), at most limit lines of each kind (0: all).
func DiffVRPs(got, want []VRP, limit int) string {
	got = SortVRPs(slices.Clone(got))
	want = SortVRPs(slices.Clone(want))
	var missing, extra []VRP
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || (i < len(got) && got[i].Compare(want[j]) < 0):
			extra = append(extra, got[i])
			i++
		case i == len(got) || got[i].Compare(want[j]) > 0:
			missing = append(missing, want[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "got %d VRPs, want %d: %d missing, %d unexpected\n", len(got), len(want), len(missing), len(extra))
	for _, l := range []struct {
		mark string
		vrps []VRP
	}{{"- ", missing}, {"+ ", extra}} {
		for k, v := range l.vrps {
			if limit > 0 && k == limit {
				fmt.Fprintf(&b, "%s... %d more\n", l.mark, len(l.vrps)-limit)
				break
			}
			b.WriteString(l.mark + v.String() + "\n")
		}
	}
	return b.String()
}
