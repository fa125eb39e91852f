package compact

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"google.golang.org/protobuf/proto"
)

// FuzzSnapshot feeds arbitrary snapshot bytes (with their own hash, as a
// proxy gone wrong could sign) to the client: it must fail cleanly or
// verify, never panic. Seeded with a small repository's valid snapshots, with CA certificates
// and lean.
func FuzzSnapshot(f *testing.F) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	fl := newFollower(f, "small", "https://localhost:1/", now)
	s := testSigner(f, 3)
	for _, v := range variants {
		_, groups := validateAndBuild(f, fl.src, []rpki.TrustAnchor{fl.ta()}, now, s, v.lean)
		snap := marshal(&irpkipb.CompactSnapshot{Serial: 1, Session: "s", Cas: groups, Version: Version, Kind: irpkipb.FileKind_FILE_KIND_COMPACT_SNAPSHOT})
		f.Add(snap)
		f.Add(snap[:len(snap)/2])
	}
	tr := trust(f, s)
	f.Fuzz(func(t *testing.T, data []byte) {
		h := sha256.Sum256(data)
		st, err := ParseSnapshot(data, hex.EncodeToString(h[:]), "s", 1)
		if err != nil {
			return
		}
		if _, err := st.Verify(now, tr, nil); err != nil {
			return
		}
		// What verified encodes again.
		var back irpkipb.CompactSnapshot
		if err := proto.Unmarshal(st.Marshal(), &back); err != nil {
			t.Fatalf("the verified state does not decode again: %v", err)
		}
	})
}
