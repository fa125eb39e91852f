package rpki

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// finish sorts and deduplicates what the run collected.
func (r *run) finish(res *Result) {
	res.Stats.VRPs = len(r.vrps)
	res.VRPs = dedupVRPs(r.vrps)
	res.Stats.UniqueVRPs = len(res.VRPs)
	// rpki-client 8.2 counts ASPA payloads per address family: vaps
	// are the (customer, provider, family) entries, uniquevaps the
	// (customer, family) pairs with a provider.
	for _, a := range r.aspas {
		res.Stats.VAPs += len(familyProviders(a, 1)) + len(familyProviders(a, 2))
	}
	res.ASPAs = dedupASPAs(r.aspas)
	for _, a := range res.ASPAs {
		for _, afi := range []uint8{1, 2} {
			if len(familyProviders(a, afi)) > 0 {
				res.Stats.UniqueVAPs++
			}
		}
	}
	res.Stats.Repositories = len(r.repos)
	slices.SortStableFunc(res.CAs, func(a, b CAResult) int {
		return cmp.Or(strings.Compare(a.TA, b.TA), strings.Compare(a.URI, b.URI))
	})
	slices.SortStableFunc(res.Problems, func(a, b *ObjectError) int { return strings.Compare(a.URI, b.URI) })

	// The manifest number rule remembers the last manifest accepted per
	// URI: this run's, and earlier ones still current (a point that
	// failed this time keeps its number).
	numbers := make(map[string]*ppResult, len(r.accepted))
	for uri, pp := range r.v.numbers {
		if pp.window.until.IsZero() || !pp.window.until.Before(r.now) {
			numbers[uri] = pp
		}
	}
	for _, pp := range r.accepted {
		numbers[pp.mftURI] = pp
	}
	r.v.numbers = numbers
}

// CompareVRPOutput orders VRPs as rpki-client's output does: IPv4 before
// IPv6, then by address, then longer prefixes first, then larger maximum
// lengths first, then by ASN.
func CompareVRPOutput(a, b VRPOutput) int {
	if a.Prefix.Addr().Is4() != b.Prefix.Addr().Is4() {
		if a.Prefix.Addr().Is4() {
			return -1
		}
		return 1
	}
	return cmp.Or(
		a.Prefix.Addr().Compare(b.Prefix.Addr()),
		cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()),
		cmp.Compare(b.MaxLength, a.MaxLength),
		cmp.Compare(a.ASN, b.ASN),
	)
}

// dedupVRPs sorts vrps and merges duplicates (same ASN, prefix and
// maximum length), keeping the latest expiry and its TA, as rpki-client.
func dedupVRPs(vrps []VRPOutput) []VRPOutput {
	slices.SortStableFunc(vrps, CompareVRPOutput)
	out := vrps[:0]
	for _, v := range vrps {
		if n := len(out); n > 0 && CompareVRPOutput(out[n-1], v) == 0 {
			if v.Expires.After(out[n-1].Expires) {
				out[n-1].Expires, out[n-1].TA = v.Expires, v.TA
			}
			continue
		}
		out = append(out, v)
	}
	return slices.Clip(out)
}

// familyProviders returns the providers of a that hold for the address
// family afi (1 IPv4, 2 IPv6).
func familyProviders(a ASPAOutput, afi uint8) []uint32 {
	var out []uint32
	for _, p := range a.Providers {
		if p.AFI == 0 || p.AFI == afi {
			out = append(out, p.ASID)
		}
	}
	return out
}

// dedupASPAs sorts ASPAs by customer and merges those of one customer:
// the union of the providers (an AFI limit widened to both families when
// they disagree) and the earliest expiry, as rpki-client merges them.
func dedupASPAs(as []ASPAOutput) []ASPAOutput {
	slices.SortStableFunc(as, func(a, b ASPAOutput) int { return cmp.Compare(a.CustomerASID, b.CustomerASID) })
	var out []ASPAOutput
	for _, a := range as {
		n := len(out)
		if n == 0 || out[n-1].CustomerASID != a.CustomerASID {
			a.Providers = slices.Clone(a.Providers)
			out = append(out, a)
			continue
		}
		last := &out[n-1]
		if a.Expires.Before(last.Expires) {
			last.Expires = a.Expires
		}
		for _, p := range a.Providers {
			i, found := slices.BinarySearchFunc(last.Providers, p.ASID, func(x ASPAProvider, as uint32) int { return cmp.Compare(x.ASID, as) })
			switch {
			case !found:
				last.Providers = slices.Insert(last.Providers, i, p)
			case last.Providers[i].AFI != p.AFI:
				last.Providers[i].AFI = 0
			}
		}
	}
	return out
}

// RPKIClientCSVHeader is the header of rpki-client's CSV output.
const RPKIClientCSVHeader = "ASN,IP Prefix,Max Length,Trust Anchor,Expires"

// WriteCSV writes the VRPs of res in rpki-client's CSV format: the header
// "ASN,IP Prefix,Max Length,Trust Anchor,Expires", then one
// "AS64512,10.0.0.0/24,24,ta,1676395228" row per VRP, in res's order.
func (res *Result) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(RPKIClientCSVHeader + "\n")
	for _, v := range res.VRPs {
		bw.WriteString(v.String())
		bw.WriteByte(',')
		bw.WriteString(v.TA)
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatInt(v.Expires.Unix(), 10))
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write VRP CSV: %w", err)
	}
	return nil
}

// JSONMeta is what rpki-client's JSON metadata says about the run beyond
// the counts: where and when it ran, how long it took, which TAL files.
type JSONMeta struct {
	BuildMachine string
	// BuildTime is printed as rpki-client does; zero means res.Time.
	BuildTime             time.Time
	Elapsed, User, System time.Duration
	TALFiles              []string
}

// WriteJSON writes res in the JSON format of rpki-client 8.2 (its -j
// output), byte for byte: the metadata with the counts of res.Stats, the
// VRPs as "roas", no BGPsec keys, and the ASPAs under
// "provider_authorizations", once per address family (a provider limited
// to the other family left out). rpki-client's cache cleaning counters
// (cachedir_*) are 0: validating never deletes anything.
func (res *Result) WriteJSON(w io.Writer, meta JSONMeta) error {
	bw := bufio.NewWriter(w)
	s := res.Stats
	bt := meta.BuildTime
	if bt.IsZero() {
		bt = res.Time
	}
	secs := func(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
	fmt.Fprintf(bw, "{\n\t\"metadata\": {\n")
	fmt.Fprintf(bw, "\t\t\"buildmachine\": %s,\n", strconv.Quote(meta.BuildMachine))
	fmt.Fprintf(bw, "\t\t\"buildtime\": \"%s\",\n", bt.UTC().Format("2006-01-02T15:04:05Z"))
	fmt.Fprintf(bw, "\t\t\"elapsedtime\": \"%s\",\n\t\t\"usertime\": \"%s\",\n\t\t\"systemtime\": \"%s\",\n", secs(meta.Elapsed), secs(meta.User), secs(meta.System))
	for _, kv := range []struct {
		k string
		v int
	}{
		{"roas", s.ROAs}, {"failedroas", s.FailedROAs}, {"invalidroas", s.InvalidROAs},
		{"aspas", s.ASPAs}, {"failedaspas", s.FailedASPAs}, {"invalidaspas", s.InvalidASPAs},
		{"bgpsec_pubkeys", 0}, {"certificates", s.Certificates}, {"invalidcertificates", s.InvalidCertificates},
		{"taks", 0}, {"tals", s.TALs}, {"invalidtals", s.InvalidTALs},
	} {
		fmt.Fprintf(bw, "\t\t\"%s\": %d,\n", kv.k, kv.v)
	}
	bw.WriteString("\t\t\"talfiles\": [\n")
	for i, f := range meta.TALFiles {
		sep := ","
		if i == len(meta.TALFiles)-1 {
			sep = ""
		}
		fmt.Fprintf(bw, "\t\t\t%s%s\n", strconv.Quote(f), sep)
	}
	bw.WriteString("\t\t],\n")
	for _, kv := range []struct {
		k string
		v int
	}{
		{"manifests", s.Manifests}, {"failedmanifests", s.FailedManifests}, {"stalemanifests", s.StaleManifests},
		{"crls", s.CRLs}, {"gbrs", s.GBRs}, {"repositories", s.Repositories},
		{"vrps", s.VRPs}, {"uniquevrps", s.UniqueVRPs}, {"vaps", s.VAPs}, {"uniquevaps", s.UniqueVAPs},
		{"cachedir_del_files", 0}, {"cachedir_superfluous_files", 0},
	} {
		fmt.Fprintf(bw, "\t\t\"%s\": %d,\n", kv.k, kv.v)
	}
	bw.WriteString("\t\t\"cachedir_del_dirs\": 0\n\t},\n\n\t\"roas\": [\n")
	for i, v := range res.VRPs {
		if i > 0 {
			bw.WriteString(",\n")
		}
		fmt.Fprintf(bw, "\t\t{ \"asn\": %d, \"prefix\": \"%s\", \"maxLength\": %d, \"ta\": %s, \"expires\": %d }",
			v.ASN, v.Prefix, v.MaxLength, strconv.Quote(v.TA), v.Expires.Unix())
	}
	bw.WriteString("\n\t],\n\n\t\"bgpsec_keys\": [\n\n\t],\n\n\t\"provider_authorizations\": {\n")
	for fi, fam := range []struct {
		name string
		afi  uint8
	}{{"ipv4", 1}, {"ipv6", 2}} {
		fmt.Fprintf(bw, "\t\t\"%s\": [\n", fam.name)
		n := 0
		for _, a := range res.ASPAs {
			ps := familyProviders(a, fam.afi)
			if len(ps) == 0 {
				continue
			}
			if n > 0 {
				bw.WriteString(",\n")
			}
			n++
			fmt.Fprintf(bw, "\t\t\t{ \"customer_asid\": %d, \"providers\": [", a.CustomerASID)
			for k, p := range ps {
				if k > 0 {
					bw.WriteString(", ")
				}
				bw.WriteString(strconv.FormatUint(uint64(p), 10))
			}
			fmt.Fprintf(bw, "], \"expires\": %d }", a.Expires.Unix())
		}
		sep := ","
		if fi == 1 {
			sep = ""
		}
		fmt.Fprintf(bw, "\n\t\t]%s\n", sep)
	}
	bw.WriteString("\t}\n\n}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write VRP JSON: %w", err)
	}
	return nil
}
