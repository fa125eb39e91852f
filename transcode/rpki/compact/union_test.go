package compact

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"google.golang.org/protobuf/proto"
)

// split is a tree split over two repositories (repotest Config.Split),
// validated whole and built into one compact publication per repository,
// as serve publishes them.
type split struct {
	now    time.Time
	signer *Signer
	trust  Trust
	res    *rpki.Result
	// groups of the first repository (the TA's) and of the second.
	a, b []*irpkipb.CompactCA
}

func newSplitTree(t testing.TB) *split {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	p, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		kc = filepath.Join(os.TempDir(), "rrdp-proxy-compact-test-keys")
	}
	r, err := repotest.Create(dir, repotest.Config{Profile: p, Seed: 5, BaseURL: "https://localhost:1/", Split: "https://localhost:2/"}, now, repotest.Options{KeyCache: kc})
	if err != nil {
		t.Fatal(err)
	}
	src := rpki.MapSource{}
	for _, repo := range r.Info().Repositories {
		applyRRDP(t, src, filepath.Join(dir, repo.Dir, filepath.FromSlash(repo.Snapshot.Path)))
	}
	ta, err := repotest.TrustAnchor(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &split{now: now, signer: testSigner(t, 9)}
	s.trust = trust(t, s.signer)
	var groups []*irpkipb.CompactCA
	s.res, groups = validateAndBuild(t, src, []rpki.TrustAnchor{ta}, now, s.signer, false)
	notify := map[string]string{}
	first := ""
	for _, pt := range s.res.Points {
		notify[pt.URI] = pt.CA.Notify
		if pt.Parent == "" {
			first = pt.CA.Notify
		}
	}
	for _, g := range groups {
		if notify[g.Uri] == first {
			s.a = append(s.a, g)
		} else {
			s.b = append(s.b, g)
		}
	}
	if len(s.a) == 0 || len(s.b) == 0 {
		t.Fatalf("%d groups in the first repository, %d in the second: want both", len(s.a), len(s.b))
	}
	return s
}

// feed returns a Feed of the publication pub, files fs, after prev.
func feed(name string, prev *State, fs files) Feed {
	return Feed{Name: name, Prev: prev, Notification: fs[NotificationName], Fetch: fs.fetch}
}

// publishNext returns the files of pub's next serial with groups.
func publishNext(t *testing.T, pub *Publication, groups []*irpkipb.CompactCA, s *Signer) (*Publication, files) {
	t.Helper()
	next, fs, err := pub.Next(groups, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatal("the next serial changes nothing")
	}
	out := files{}
	out.add(fs)
	return next, out
}

// without returns groups less the one at uri.
func without(groups []*irpkipb.CompactCA, uri string) []*irpkipb.CompactCA {
	return slices.DeleteFunc(slices.Clone(groups), func(g *irpkipb.CompactCA) bool { return g.Uri == uri })
}

// leaf returns the URI of a group of gs that is no group's issuer and
// holds entries, other than skip.
func leaf(t *testing.T, gs []*irpkipb.CompactCA, all []*irpkipb.CompactCA, skip string) string {
	t.Helper()
	issuers := map[string]bool{}
	for _, g := range all {
		issuers[g.Parent] = true
	}
	for _, g := range gs {
		if !issuers[g.Uri] && g.Uri != skip && g.Parent != "" && len(g.Entries) > 0 {
			return g.Uri
		}
	}
	t.Fatal("no leaf group with entries")
	return ""
}

// TestSyncAll follows the two publications of a split tree: together
// they give the validator's VRPs over the whole tree; alone, the second
// gives none and a Skip per group naming its issuer; a fresh state that
// fails is refused whole while the other advances; a CA that fails against
// its issuer in the other publication is left out alone.
func TestSyncAll(t *testing.T) {
	s := newSplitTree(t)
	pubA, fsA, err := New("session-a", s.a, s.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pubB, fsB, err := New("session-b", s.b, s.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a1, b1 := files{}, files{}
	a1.add(fsA)
	b1.add(fsB)

	out := SyncAll([]Feed{feed("a", nil, a1), feed("b", nil, b1)}, s.trust, s.now)
	if err := out.Failed(); err != nil || len(out.Skips) != 0 {
		t.Fatalf("both: %v, skips %v", err, out.Skips)
	}
	if got, want := csv(t, out.Result), csv(t, s.res); !bytes.Equal(got, want) {
		t.Fatalf("both: the VRPs differ from the validator's over the whole tree:\ngot:\n%s\nwant:\n%s", got, want)
	}
	stA, stB := out.Feeds[0].State, out.Feeds[1].State
	if stA == nil || stB == nil || stA.Serial != 1 || stB.Serial != 1 {
		t.Fatalf("both: states %v %v, want serial 1 each", stA, stB)
	}
	if _, _, err := Sync(nil, b1[NotificationName], b1.fetch, s.trust, s.now); err == nil || !strings.Contains(err.Error(), "is not in the state") {
		t.Errorf("Sync of the second alone: %v, want its issuer missing (Sync is for a self-contained publication)", err)
	}

	alone := SyncAll([]Feed{feed("b", nil, b1)}, s.trust, s.now)
	if err := alone.Failed(); err != nil || len(alone.Result.VRPs) != 0 || len(alone.Skips) != len(s.b) {
		t.Errorf("the second alone: %v, %d VRPs, %d skips, want none, none and %d", err, len(alone.Result.VRPs), len(alone.Skips), len(s.b))
	}
	for _, sk := range alone.Skips {
		if sk.Feed != "b" || sk.Issuer == "" || !strings.Contains(sk.String(), sk.Issuer) || !strings.Contains(sk.String(), sk.CA) {
			t.Errorf("the second alone: skip %q does not name the publication, the CA and the issuer", sk)
		}
	}

	t.Run("fresh state refused whole", func(t *testing.T) {
		// The first advances (a member CA goes); the second's new serial
		// has an entry that its iMFT does not list with that hash.
		gone := leaf(t, s.a, append(s.a, s.b...), "")
		_, a2 := publishNext(t, pubA, without(s.a, gone), s.signer)
		bad := make([]*irpkipb.CompactCA, len(s.b))
		var victim string
		for i, g := range s.b {
			bad[i] = g
			if victim == "" && len(g.Entries) > 0 {
				victim = g.Uri
				c := proto.Clone(g).(*irpkipb.CompactCA)
				c.Entries[0].Content = append(slices.Clone(c.Entries[0].Content), 0)
				bad[i] = c
			}
		}
		_, b2 := publishNext(t, pubB, bad, s.signer)
		out := SyncAll([]Feed{feed("a", stA, a2), feed("b", stB, b2)}, s.trust, s.now)
		if out.Feeds[0].Err != nil || out.Feeds[0].State.Serial != 2 {
			t.Errorf("the first: %v, serial %d, want serial 2", out.Feeds[0].Err, out.Feeds[0].State.Serial)
		}
		err := out.Feeds[1].Err
		// The delta leaves the iMFT's hashes out (its entries give them),
		// so the change shows as an iMFT whose signature fails.
		if !errors.Is(err, ErrSignature) && !errors.Is(err, ErrHash) || !strings.HasPrefix(err.Error(), "b: ") || !strings.Contains(err.Error(), victim) {
			t.Errorf("the second: %v, want a bad signature or hash naming it and group %s", err, victim)
		}
		if out.Feeds[1].State != stB {
			t.Errorf("the second: its previous state is not kept")
		}
		// The VRPs: the first's new state and the second's kept one.
		want := SyncAll([]Feed{feed("a", nil, a2), feed("b", nil, b1)}, s.trust, s.now)
		if err := want.Failed(); err != nil {
			t.Fatal(err)
		}
		if got, want := csv(t, out.Result), csv(t, want.Result); !bytes.Equal(got, want) {
			t.Errorf("the VRPs are not those of the first's serial 2 and the second's serial 1:\ngot:\n%s\nwant:\n%s", got, want)
		}
		if len(out.Result.VRPs) >= len(s.res.VRPs) {
			t.Errorf("%d VRPs with a member CA gone, want fewer than %d", len(out.Result.VRPs), len(s.res.VRPs))
		}
	})

	t.Run("CA revoked across publications", func(t *testing.T) {
		// The first's serial 2 revokes, in an issuer's iMFT, the
		// certificate of a CA of the second; the second's serial 2 drops
		// another of its CAs, a valid change.
		var revoked *irpkipb.CompactCA
		for _, g := range s.b {
			if len(g.Entries) > 0 {
				revoked = g
				break
			}
		}
		cert, err := rpki.ParseCert(revoked.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		ga := make([]*irpkipb.CompactCA, len(s.a))
		for i, g := range s.a {
			ga[i] = g
			if g.Uri == revoked.Parent {
				c := proto.Clone(g).(*irpkipb.CompactCA)
				rc := &irpkipb.RevokedCert{RevocationTime: c.Manifest.ManifestContent.CrlThisUpdate}
				setSerial(cert.Serial, &rc.Serial, &rc.BigSerial)
				c.Manifest.ManifestContent.RevocedCerts = append(c.Manifest.ManifestContent.RevocedCerts, rc)
				resign(c.Manifest, s.signer)
				ga[i] = c
			}
		}
		_, a2 := publishNext(t, pubA, ga, s.signer)
		_, b2 := publishNext(t, pubB, without(s.b, leaf(t, s.b, s.b, revoked.Uri)), s.signer)
		for _, c := range []struct {
			name string
			b    Feed
		}{{"the second kept", feed("b", stB, b1)}, {"the second fresh", feed("b", stB, b2)}} {
			out := SyncAll([]Feed{feed("a", stA, a2), c.b}, s.trust, s.now)
			if err := out.Failed(); err != nil {
				t.Errorf("%s: %v, want no failure", c.name, err)
			}
			if out.Feeds[0].State.Serial != 2 {
				t.Errorf("%s: the first at serial %d, want 2", c.name, out.Feeds[0].State.Serial)
			}
			if got, want := out.Feeds[1].State.Serial, serialOf(t, c.b, s.trust); got != want {
				t.Errorf("%s: the second at serial %d, want %d", c.name, got, want)
			}
			if len(out.Skips) != 1 || out.Skips[0].CA != revoked.Uri || out.Skips[0].Issuer != revoked.Parent || !strings.Contains(out.Skips[0].Reason, "revoked") {
				t.Errorf("%s: skips %v, want one for %s, revoked by its issuer %s", c.name, out.Skips, revoked.Uri, revoked.Parent)
			}
		}
	})
}

// serialOf returns the serial of f's notification.
func serialOf(t *testing.T, f Feed, tr Trust) uint64 {
	t.Helper()
	nt, err := ParseNotification(f.Notification, tr.Keys)
	if err != nil {
		t.Fatal(err)
	}
	return nt.Serial
}

// TestStates round-trips a client's state file, takes a version-1 file as
// the legacy state, and rejects a truncated one.
func TestStates(t *testing.T) {
	s := newSplitTree(t)
	a, err := UnmarshalState((&State{Session: "a", Serial: 3, groups: map[string]*irpkipb.CompactCA{}}).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	b := &State{Session: "b", Serial: 7, groups: map[string]*irpkipb.CompactCA{}}
	for _, g := range s.b {
		b.groups[g.Uri] = g
	}
	data := MarshalStates([]string{"https://a/n.bin", "https://b/n.bin", "https://c/n.bin"}, []*State{a, b, nil})
	states, legacy, err := UnmarshalStates(data)
	if err != nil || legacy != nil || len(states) != 2 {
		t.Fatalf("round trip: %v, legacy %v, %d states, want 2", err, legacy, len(states))
	}
	if got := states["https://b/n.bin"]; got == nil || got.Session != "b" || got.Serial != 7 || !bytes.Equal(got.Marshal(), b.Marshal()) {
		t.Errorf("round trip: the second state differs")
	}
	if got := states["https://a/n.bin"]; got == nil || got.Serial != 3 {
		t.Errorf("round trip: the first state differs")
	}
	states, legacy, err = UnmarshalStates(b.Marshal())
	if err != nil || states != nil || legacy == nil || !bytes.Equal(legacy.Marshal(), b.Marshal()) {
		t.Errorf("a state file of version 1: %v, states %v, want it as the legacy state", err, states)
	}
	for _, n := range []int{len(data) - 1, len(statesMagic) + 3} {
		if _, _, err := UnmarshalStates(data[:n]); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "at byte") {
			t.Errorf("truncated to %d bytes: %v, want malformed, with the offset", n, err)
		}
	}
}

// BenchmarkSyncAllSplit measures SyncAll from nothing over the two
// publications of a split tree (split) against Sync of one publication of
// the same groups (whole), in the same run: the cost of verifying across
// publications, as a ratio of the two.
func BenchmarkSyncAllSplit(b *testing.B) {
	s := newSplitTree(b)
	_, fsA, err := New("session-a", s.a, s.signer, Options{})
	if err != nil {
		b.Fatal(err)
	}
	_, fsB, err := New("session-b", s.b, s.signer, Options{})
	if err != nil {
		b.Fatal(err)
	}
	all := append(slices.Clone(s.a), s.b...)
	slices.SortFunc(all, func(x, y *irpkipb.CompactCA) int { return strings.Compare(x.Uri, y.Uri) })
	_, fsW, err := New("session-w", all, s.signer, Options{})
	if err != nil {
		b.Fatal(err)
	}
	a, bb, w := files{}, files{}, files{}
	a.add(fsA)
	bb.add(fsB)
	w.add(fsW)
	b.Run("whole", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Sync(nil, w[NotificationName], w.fetch, s.trust, s.now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if out := SyncAll([]Feed{feed("a", nil, a), feed("b", nil, bb)}, s.trust, s.now); out.Failed() != nil {
				b.Fatal(out.Failed())
			}
		}
	})
}

// FuzzStates feeds arbitrary bytes to the state file decoder: it fails
// cleanly or decodes states that encode and decode again to the same.
func FuzzStates(f *testing.F) {
	st := &State{Session: "s", Serial: 2, groups: map[string]*irpkipb.CompactCA{"rsync://h/m/a.cer": {Uri: "rsync://h/m/a.cer", Repo: "rsync://h/m/a/"}}}
	v2 := MarshalStates([]string{"https://a/n.bin", "https://b/n.bin"}, []*State{st, st})
	f.Add(v2)
	f.Add(v2[:len(v2)-3])
	f.Add(st.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		states, legacy, err := UnmarshalStates(data)
		if err != nil || legacy != nil {
			return
		}
		names := slices.Sorted(maps.Keys(states))
		list := make([]*State, len(names))
		for i, n := range names {
			list[i] = states[n]
		}
		again, _, err := UnmarshalStates(MarshalStates(names, list))
		if err != nil || len(again) != len(states) {
			t.Fatalf("re-encoded states: %v, %d states, want %d", err, len(again), len(states))
		}
		for n, s := range states {
			if a := again[n]; a == nil || !bytes.Equal(a.Marshal(), s.Marshal()) {
				t.Fatalf("re-encoded state of %q differs", n)
			}
		}
	})
}
