package compact

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// TestRollover publishes through a key rollover (old key; old and new;
// new and old; new) and follows it with three clients, trusting the old
// key, the new one, or both: all accept during the overlap, by delta and
// from nothing; once the old key is dropped the old-key client rejects,
// naming the key that signed, and keeps its state. The phases alternate
// between CA certificates and lean, so the deltas switch groups from one
// to the other as well.
func TestRollover(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	oldKey, newKey := testSigner(t, 7), testSigner(t, 8)
	clients := []struct {
		name  string
		trust Trust
		state *State
	}{{"old", trust(t, oldKey), nil}, {"new", trust(t, newKey), nil}, {"both", trust(t, oldKey, newKey), nil}}
	var pub *Publication
	pubFiles := files{}
	for i, phase := range []struct {
		name   string
		signer *Signer
		accept []bool // by client
	}{
		{"old key", oldKey, []bool{true, false, true}},
		{"overlap, old key first", oldKey.With(newKey), []bool{true, true, true}},
		{"overlap, new key first", newKey.With(oldKey), []bool{true, true, true}},
		{"old key dropped", newKey, []bool{false, true, true}},
	} {
		f.advance(now, 1)
		_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, phase.signer, i%2 == 1)
		var fs []File
		var err error
		if pub == nil {
			pub, fs, err = New("s", groups, phase.signer, Options{})
		} else {
			pub, fs, err = pub.Next(groups, phase.signer, Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		pubFiles.add(fs)
		signedBy := hex.EncodeToString(phase.signer.KeyIDs()[0])
		for j := range clients {
			c := &clients[j]
			for k, from := range []*State{c.state, nil} {
				st, res, err := Sync(from, pubFiles[NotificationName], pubFiles.fetch, c.trust, now)
				switch {
				case phase.accept[j] && err != nil:
					t.Errorf("%s: the client trusting the %s key: %v", phase.name, c.name, err)
				case phase.accept[j] && len(res.VRPs) == 0:
					t.Errorf("%s: the client trusting the %s key got no VRPs", phase.name, c.name)
				case phase.accept[j] && k == 0:
					c.state = st
				case !phase.accept[j] && err == nil:
					t.Errorf("%s: the client trusting the %s key accepted serial %d", phase.name, c.name, st.Serial)
				case !phase.accept[j] && (!errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "notification: bad signature: signed by key "+signedBy+", not a trusted key")):
					t.Errorf("%s: the client trusting the %s key: got %v, want the notification refused naming key %s", phase.name, c.name, err, signedBy)
				}
				if !phase.accept[j] && st != nil {
					t.Errorf("%s: a state returned with the error", phase.name)
				}
				if k == 0 && !phase.accept[j] && c.state != nil && c.state.Serial != pub.Serial-1 {
					t.Errorf("%s: the state kept is at serial %d, want %d", phase.name, c.state.Serial, pub.Serial-1)
				}
			}
		}
	}
	if got, want := clients[0].state.Serial, uint64(3); got != want {
		t.Errorf("the old-key client is at serial %d, want %d (the last of the overlap)", got, want)
	}
	if got, want := clients[2].state.Serial, uint64(4); got != want {
		t.Errorf("the client trusting both keys is at serial %d, want %d", got, want)
	}
}

// TestRolloverForged forges the second signature of the overlap, by a key
// a client trusts, on the notification and on an iMFT: a client trusting
// that key rejects, whatever the first signature; a client that knows only
// the other key ignores it and accepts.
func TestRolloverForged(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	oldKey, newKey := testSigner(t, 7), testSigner(t, 8)
	s := oldKey.With(newKey)
	_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, s, false)
	for _, tc := range []struct {
		name  string
		make  func() files
		where string
	}{
		{"notification", func() files {
			_, fs, err := New("s", groups, s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := files{}
			out.add(fs)
			var nt irpkipb.Notification
			if err := proto.Unmarshal(out[NotificationName], &nt); err != nil {
				t.Fatal(err)
			}
			nt.MoreSignatures[0].Signature[5] ^= 1
			out[NotificationName] = marshal(&nt)
			return out
		}, "notification: bad signature"},
		{"iMFT", func() files {
			gs := make([]*irpkipb.CompactCA, len(groups))
			for i, g := range groups {
				gs[i] = proto.Clone(g).(*irpkipb.CompactCA)
			}
			gs[len(gs)-1].Manifest.MoreSignatures[0].Signature[5] ^= 1
			_, fs, err := New("s", gs, s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := files{}
			out.add(fs)
			return out
		}, groups[len(groups)-1].Uri + ": iMFT: bad signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := tc.make()
			for _, c := range []struct {
				name  string
				trust Trust
				ok    bool
			}{{"new", trust(t, newKey), false}, {"both", trust(t, oldKey, newKey), false}, {"old", trust(t, oldKey), true}} {
				_, _, err := Sync(nil, pub[NotificationName], pub.fetch, c.trust, now)
				if c.ok && err != nil {
					t.Errorf("trusting the %s key: %v", c.name, err)
				}
				if !c.ok && (!errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), tc.where) || !strings.Contains(err.Error(), "does not verify")) {
					t.Errorf("trusting the %s key: got %v, want %q and does not verify", c.name, err, tc.where)
				}
			}
		})
	}
}

// TestVerifySignature checks the rules for several signatures on one
// message.
func TestVerifySignature(t *testing.T) {
	a, b, c := testSigner(t, 1), testSigner(t, 2), testSigner(t, 3)
	msg := []byte("message")
	sig := func(s *Signer) *irpkipb.Signature { p, _ := s.sign("label", msg); return p }
	bad := func(s *Signer) *irpkipb.Signature { p := sig(s); p.Signature[0] ^= 1; return p }
	other := func(s *Signer) *irpkipb.Signature { p := sig(s); p.Algorithm = "ECDSA-P256"; return p }
	keys := trust(t, a, b).Keys
	for _, tc := range []struct {
		name    string
		primary *irpkipb.Signature
		more    []*irpkipb.Signature
		want    string // "" accepts
	}{
		{"trusted", sig(a), nil, ""},
		{"unknown first, trusted second", sig(c), []*irpkipb.Signature{sig(b)}, ""},
		{"trusted, forged unknown", sig(a), []*irpkipb.Signature{bad(c)}, ""},
		{"two trusted", sig(a), []*irpkipb.Signature{sig(b)}, ""},
		{"trusted, forged trusted", sig(a), []*irpkipb.Signature{bad(b)}, "by trusted key " + hex.EncodeToString(b.KeyIDs()[0]) + " does not verify"},
		{"forged trusted, trusted", bad(a), []*irpkipb.Signature{sig(b)}, "does not verify"},
		{"trusted key, another algorithm", other(a), []*irpkipb.Signature{sig(b)}, `of algorithm "ECDSA-P256"`},
		{"unknown only", sig(c), nil, "signed by key " + hex.EncodeToString(c.KeyIDs()[0]) + ", not a trusted key"},
		{"two unknown", sig(c), []*irpkipb.Signature{{KeyId: []byte{1, 2}}}, "signed by keys " + hex.EncodeToString(c.KeyIDs()[0]) + ", 0102, none of them a trusted key"},
		{"none", nil, nil, "not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifySignature(keys, tc.primary, tc.more, "label", msg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want accepted", err)
			case tc.want != "" && (!errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSigner checks the order and the deduplication of a Signer's keys.
func TestSigner(t *testing.T) {
	a, b := testSigner(t, 1), testSigner(t, 2)
	ids := func(s *Signer) []string {
		var out []string
		for _, id := range s.KeyIDs() {
			out = append(out, hex.EncodeToString(id[:4]))
		}
		return out
	}
	ab, ba := a.With(b), b.With(a)
	if got, want := ids(ab), append(ids(a), ids(b)...); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("a.With(b) has keys %v, want %v", got, want)
	}
	if !bytes.Equal(ba.Public(), b.Public()) {
		t.Error("b.With(a) does not sign first with b")
	}
	if got := len(ab.With(a).With(ba).KeyIDs()); got != 2 {
		t.Errorf("got %d keys, want 2 (each once)", got)
	}
	if len(a.KeyIDs()) != 1 {
		t.Errorf("a.With(b) changed a")
	}
	p1, m1 := ab.sign("l", []byte("m"))
	p2, m2 := ab.sign("l", []byte("m"))
	if !proto.Equal(p1, p2) || len(m1) != 1 || !proto.Equal(m1[0], m2[0]) {
		t.Error("two signatures of the same bytes differ")
	}
	if _, err := NewSigner(a.keys[0], []byte("short")); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Errorf("got %v, want key 2 refused", err)
	}
}
