package compact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// TestRejectDelta changes an entry inside a delta and signs the
// notification again with the trusted key (as a broken producer would):
// the iMFT rebuilt from the entries no longer verifies, and the client
// says which CA and keeps its state.
func TestRejectDelta(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { testRejectDelta(t, v.lean) })
	}
}

func testRejectDelta(t *testing.T, lean bool) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	keys := trust(t, f.signer)
	_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, f.signer, lean)
	pub1, fs, err := New("s", groups, f.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub := files{}
	pub.add(fs)
	prev, _, err := Sync(nil, pub[NotificationName], pub.fetch, keys, now)
	if err != nil {
		t.Fatal(err)
	}
	f.advance(now, 1)
	_, groups2 := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, f.signer, lean)
	_, fs2, err := pub1.Next(groups2, f.signer, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub.add(fs2)
	var nt irpkipb.Notification
	if err := proto.Unmarshal(pub[NotificationName], &nt); err != nil {
		t.Fatal(err)
	}
	name := "compact/" + nt.Deltas[0].Uri
	var d irpkipb.CompactDelta
	if err := proto.Unmarshal(pub[name], &d); err != nil {
		t.Fatal(err)
	}
	var target string
	for _, g := range d.Cas {
		if len(g.Modified) > 0 && strings.HasSuffix(g.Modified[0].Name, ".roa") {
			var r irpkipb.ROA
			if err := proto.Unmarshal(g.Modified[0].Content, &r); err != nil {
				t.Fatal(err)
			}
			r.Asn++ // another origin AS
			g.Modified[0].Content = marshal(&r)
			target = g.Uri + ": " + g.Modified[0].Name
			break
		}
	}
	if target == "" {
		t.Fatal("no modified iROA in the delta")
	}
	tampered := marshal(&d)
	pub[name] = tampered
	h := sha256.Sum256(tampered)
	nt.Deltas[0].Hash = hex.EncodeToString(h[:])
	nt.Signature = nil
	nt.Signature, nt.MoreSignatures = f.signer.sign(notificationLabel, marshal(&nt))
	pub[NotificationName] = marshal(&nt)
	st, _, err := Sync(prev, pub[NotificationName], pub.fetch, keys, now)
	if err == nil {
		t.Fatalf("accepted the tampered delta: serial %d", st.Serial)
	}
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "iMFT") || !strings.Contains(err.Error(), "deltas 2 to 2") {
		t.Errorf("got %v, want the iMFT's bad signature after deltas 2 to 2 (tampered %s)", err, target)
	}
	if prev.Serial != 1 {
		t.Errorf("the state moved to serial %d", prev.Serial)
	}
	t.Log(err)
}
