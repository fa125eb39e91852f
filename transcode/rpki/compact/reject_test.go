package compact

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// TestReject tampers with a valid publication, with CA certificates and
// lean, and checks that the client rejects each case with an error saying
// what and where, and that the state it had stays.
func TestReject(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { testReject(t, v.lean) })
	}
}

func testReject(t *testing.T, lean bool) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	res, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, f.signer, lean)
	keys := trust(t, f.signer)
	pub1, fs, err := New("s", groups, f.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := files{}
	good.add(fs)
	prev, _, err := Sync(nil, good[NotificationName], good.fetch, keys, now)
	if err != nil {
		t.Fatal(err)
	}
	// Two groups with ROAs, for the swap.
	var a, b int = -1, -1
	for i, g := range groups {
		if len(g.Entries) == 0 {
			continue
		}
		if a < 0 {
			a = i
		} else if b < 0 {
			b = i
		}
	}
	if b < 0 {
		t.Fatal("want two groups with entries")
	}
	// r is an iROA of group a.
	r := -1
	for i, e := range groups[a].Entries {
		if strings.HasSuffix(e.Name, ".roa") {
			r = i
			break
		}
	}
	if r < 0 {
		t.Fatal("want an iROA in the first group with entries")
	}
	// c is a group whose CA does not hold the prefixes of iROA r.
	var roa irpkipb.ROA
	if err := proto.Unmarshal(groups[a].Entries[r].Content, &roa); err != nil {
		t.Fatal(err)
	}
	ps, err := roaPrefixes(&roa)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]rpki.Resources{}
	for _, p := range res.Points {
		held[p.URI] = p.CA.Resources
	}
	c := slices.IndexFunc(groups, func(g *irpkipb.CompactCA) bool {
		return held[g.Uri].Contains(rpki.ROA{ASID: uint32(roa.Asn), Prefixes: ps}.Resources()) != nil
	})
	if c < 0 {
		t.Fatal("want a CA without the prefixes of an iROA of another")
	}
	clone := func() []*irpkipb.CompactCA {
		out := make([]*irpkipb.CompactCA, len(groups))
		for i, g := range groups {
			out[i] = proto.Clone(g).(*irpkipb.CompactCA)
		}
		return out
	}
	// publish returns the files of tampered groups under a valid
	// notification signed with s, at serial 1 of the session "s".
	publish := func(gs []*irpkipb.CompactCA, s *Signer) files {
		_, fs, err := New("s", gs, s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := files{}
		out.add(fs)
		return out
	}
	earliest := fromTimestamp(groups[0].Manifest.Meta.NotAfter)
	for _, g := range groups {
		if na := fromTimestamp(g.Manifest.Meta.NotAfter); na.Before(earliest) {
			earliest = na
		}
	}

	type rejectCase struct {
		name  string
		make  func() (files, *State, time.Time)
		want  error
		where []string // substrings of the message
	}
	cases := []rejectCase{
		{"notification signed by another key", func() (files, *State, time.Time) {
			return publish(clone(), testSigner(t, 99)), nil, now
		}, ErrSignature, []string{"notification", "not a trusted key"}},
		{"forged iMFT signature", func() (files, *State, time.Time) {
			gs := clone()
			gs[a].Manifest.Signature.Signature[0] ^= 1
			return publish(gs, f.signer), nil, now
		}, ErrSignature, []string{groups[a].Uri, "iMFT", "does not verify"}},
		{"iROA swapped between CAs", func() (files, *State, time.Time) {
			gs := clone()
			gs[b].Entries = append(gs[b].Entries, gs[a].Entries[r])
			gs[a].Entries = append(gs[a].Entries[:r], gs[a].Entries[r+1:]...)
			return publish(gs, f.signer), nil, now
		}, ErrHash, []string{groups[a].Uri, groups[a].Entries[r].Name, "listed in the iMFT, missing"}},
		{"iROA moved into another CA", func() (files, *State, time.Time) {
			gs := clone()
			gs[b].Entries = append(gs[b].Entries, gs[a].Entries[r])
			return publish(gs, f.signer), nil, now
		}, nil, []string{groups[b].Uri, groups[a].Entries[r].Name}},
		{"iROA moved into a CA without its prefixes, its iMFT signed again", func() (files, *State, time.Time) {
			gs := clone()
			e := proto.Clone(gs[a].Entries[r]).(*irpkipb.SnapshotEntry)
			e.Name = "moved-" + e.Name
			gs[c].Entries = append(gs[c].Entries, e)
			slices.SortFunc(gs[c].Entries, func(x, y *irpkipb.SnapshotEntry) int { return strings.Compare(x.Name, y.Name) })
			h := sha256.Sum256(e.Content)
			hl := &gs[c].Manifest.ManifestContent.Hashes.HashList
			*hl = append(*hl, &irpkipb.ManifestHash{FileName: e.Name, Hash: h[:]})
			resign(gs[c].Manifest, f.signer)
			return publish(gs, f.signer), nil, now
		}, rpki.ErrOverclaim, []string{groups[c].Uri, "moved-" + groups[a].Entries[r].Name, "iROA", "not within"}},
		{"expired iMFT", func() (files, *State, time.Time) {
			return good, nil, earliest.Add(time.Second)
		}, ErrExpired, []string{"iMFT valid from", "snapshot.bin"}},
		{"replayed older serial", func() (files, *State, time.Time) {
			f.advance(now, 1)
			_, groups2 := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, f.signer, lean)
			_, fs2, err := pub1.Next(groups2, f.signer, Options{})
			if err != nil {
				t.Fatal(err)
			}
			later := files{}
			later.add(fs)
			later.add(fs2)
			st, _, err := Sync(prev, later[NotificationName], later.fetch, keys, now)
			if err != nil {
				t.Fatal(err)
			}
			return good, st, now // the serial 1 notification again
		}, ErrReplay, []string{"serial 1, below serial 2"}},
		{"truncated notification", func() (files, *State, time.Time) {
			bad := files{}
			for k, v := range good {
				bad[k] = v
			}
			n := bad[NotificationName]
			bad[NotificationName] = n[:len(n)-10]
			return bad, nil, now
		}, nil, []string{"notification"}},
		{"truncated snapshot", func() (files, *State, time.Time) {
			bad := files{}
			for k, v := range good {
				if strings.HasSuffix(k, "snapshot.bin") {
					v = v[:len(v)/2]
				}
				bad[k] = v
			}
			return bad, nil, now
		}, ErrHash, []string{"snapshot.bin", "the notification says"}},
	}
	if lean {
		cases = append(cases, []rejectCase{
			{"CA record changed, its iMFT not signed again", func() (files, *State, time.Time) {
				gs := clone()
				gs[a].Manifest.Ca.NotAfter.Seconds++
				return publish(gs, f.signer), nil, now
			}, ErrSignature, []string{groups[a].Uri, "iMFT", "does not verify"}},
			{"iROA outside its CA record's resources, the iMFT signed again", func() (files, *State, time.Time) {
				gs := clone()
				gs[a].Manifest.Ca.Ip = nil
				resign(gs[a].Manifest, f.signer)
				return publish(gs, f.signer), nil, now
			}, rpki.ErrOverclaim, []string{groups[a].Uri, ".roa", "iROA", "not within"}},
			{"CA record beyond its issuer's resources, the iMFT signed again", func() (files, *State, time.Time) {
				gs := clone()
				// The issuer of a loses every resource.
				p := slices.IndexFunc(gs, func(g *irpkipb.CompactCA) bool { return g.Uri == gs[a].Parent })
				if p < 0 || gs[p].Parent == "" {
					t.Fatal("want a CA of entries under a CA under the trust anchor")
				}
				gs[p].Manifest.Ca.Ip, gs[p].Manifest.Ca.As = nil, nil
				resign(gs[p].Manifest, f.signer)
				return publish(gs, f.signer), nil, now
			}, rpki.ErrOverclaim, []string{groups[a].Uri, "CA record", "not within"}},
			{"trust anchor as a CA record", func() (files, *State, time.Time) {
				gs := clone()
				ta := slices.IndexFunc(gs, func(g *irpkipb.CompactCA) bool { return g.Parent == "" })
				gs[ta].Manifest.Ca = gs[a].Manifest.Ca
				gs[ta].Certificate = nil
				resign(gs[ta].Manifest, f.signer)
				return publish(gs, f.signer), nil, now
			}, ErrMalformed, []string{"a trust anchor without its certificate"}},
		}...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, from, at := tc.make()
			before := from
			st, res, err := Sync(from, fs[NotificationName], fs.fetch, keys, at)
			if err == nil {
				t.Fatalf("accepted: %d VRPs at serial %d", len(res.VRPs), st.Serial)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tc.want)
			}
			if tc.want == nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) && !errors.Is(err, ErrHash) {
				t.Errorf("got %v, want malformed, a bad signature or a hash mismatch", err)
			}
			for _, w := range tc.where {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if st != nil || from != before {
				t.Error("the state changed")
			}
			t.Log(err)
		})
	}
}

// TestPinnedTrustAnchor checks the client's TAL pinning: the TA of the
// repository passes with its own TAL's key and fails with another.
func TestPinnedTrustAnchor(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	ta := f.ta()
	_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{ta}, now, f.signer, false)
	_, fs, err := New("s", groups, f.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub := files{}
	pub.add(fs)
	tr := trust(t, f.signer)
	for _, tc := range []struct {
		name string
		spki []byte
		ok   bool
	}{
		{"its TAL", ta.TAL.SPKI, true},
		{"another TAL", append([]byte(nil), ta.TAL.SPKI[:len(ta.TAL.SPKI)-1]...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr.TAs = [][]byte{tc.spki}
			_, _, err := Sync(nil, pub[NotificationName], pub.fetch, tr, now)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && (!errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "not that of a TAL")) {
				t.Errorf("got %v, want the TA refused", err)
			}
		})
	}
}

// TestRequireCertificates checks Trust.RequireCertificates: a lean
// publication is refused, naming the first CA, one with certificates
// accepted.
func TestRequireCertificates(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	tr := trust(t, f.signer)
	tr.RequireCertificates = true
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, f.signer, v.lean)
			_, fs, err := New("s", groups, f.signer, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pub := files{}
			pub.add(fs)
			_, _, err = Sync(nil, pub[NotificationName], pub.fetch, tr, now)
			if !v.lean && err != nil {
				t.Fatal(err)
			}
			if v.lean && (!errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "CA certificates are required")) {
				t.Errorf("got %v, want the CA record refused", err)
			}
		})
	}
}
