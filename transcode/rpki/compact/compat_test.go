package compact

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// beforeRollover verifies a signed message as the compact clients from
// before key rollover did (7b10dec and older, session 4): one signature,
// over the deterministic encoding of the message with only its signature
// field cleared. A field they do not know stays in what they encode, as
// protobuf keeps unknown fields, so more_signatures is in the bytes they
// verify, and the primary key signed the message without it.
func beforeRollover(keys Keys, m proto.Message, sig **irpkipb.Signature, label string) bool {
	s := *sig
	*sig = nil
	b := marshal(m)
	*sig = s
	k, ok := keys[string(s.GetKeyId())]
	return ok && ed25519.Verify(k, signedBytes(label, b), s.GetSignature())
}

// beforeRolloverFiles reports whether the notification and every iMFT of
// the snapshot in fs pass beforeRollover with keys, and which failed.
func beforeRolloverFiles(t *testing.T, fs files, keys Keys) (bool, string) {
	t.Helper()
	var nt irpkipb.Notification
	if err := proto.Unmarshal(fs[NotificationName], &nt); err != nil {
		t.Fatal(err)
	}
	if !beforeRollover(keys, &nt, &nt.Signature, notificationLabel) {
		return false, "the notification"
	}
	var snap irpkipb.CompactSnapshot
	b, err := fs.fetch(nt.Snapshot.Uri)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	for _, g := range snap.Cas {
		if !beforeRollover(keys, g.Manifest, &g.Manifest.Signature, iMFTLabel) {
			return false, "the iMFT of " + g.Uri
		}
	}
	return true, ""
}

// TestBeforeRolloverClients checks the files against the rule of the
// compact clients from before key rollover (docs/compact.md, "Clients from
// before the rollover"): files signed by one key pass it, before and after
// a switch from one key straight to the next (no overlap: what an operator
// with such clients does), and a client of today that trusts both keys
// follows that switch by a delta; every file of an overlap fails it, which
// is why those clients refuse them ("the Ed25519 signature does not verify
// with key" the primary). The rule itself was checked against a build of
// 7b10dec on the same kinds of files.
func TestBeforeRolloverClients(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	oldKey, newKey := testSigner(t, 7), testSigner(t, 8)
	both := trust(t, oldKey, newKey)
	var pub *Publication
	fs := files{}
	var st *State
	for i, phase := range []struct {
		name   string
		signer *Signer
		pass   bool
	}{
		{"old key", oldKey, true},
		{"overlap, old key first", oldKey.With(newKey), false},
		{"old key again", oldKey, true},
		{"switched to the new key", newKey, true},
		{"overlap, new key first", newKey.With(oldKey), false},
	} {
		f.advance(now, 1)
		_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, phase.signer, false)
		var out []File
		var err error
		if pub == nil {
			pub, out, err = New("s", groups, phase.signer, Options{})
		} else {
			pub, out, err = pub.Next(groups, phase.signer, Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		fs.add(out)
		ok, what := beforeRolloverFiles(t, fs, both.Keys)
		switch {
		case phase.pass && !ok:
			t.Errorf("%s: %s fails the rule of the clients before rollover", phase.name, what)
		case !phase.pass && ok:
			t.Errorf("%s: every file passes the rule of the clients before rollover, want the notification to fail it", phase.name)
		case !phase.pass && what != "the notification":
			t.Errorf("%s: %s fails first, want the notification", phase.name, what)
		}
		next, res, err := Sync(st, fs[NotificationName], fs.fetch, both, now)
		if err != nil {
			t.Fatalf("%s: today's client trusting both keys: %v", phase.name, err)
		}
		if i > 0 && next.Serial != st.Serial+1 {
			t.Errorf("%s: serial %d, want %d", phase.name, next.Serial, st.Serial+1)
		}
		if len(res.VRPs) == 0 {
			t.Errorf("%s: no VRPs", phase.name)
		}
		st = next
	}
}
