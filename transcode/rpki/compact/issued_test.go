package compact

import (
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// TestIssued: a state's Issued is the newest thisUpdate of the manifests
// the proxy validated, read from the legacy manifests themselves, at the
// first serial and after serials two hours apart (the generator backdates thisUpdate by an hour), by delta as from nothing;
// an empty state has none.
func TestIssued(t *testing.T) {
	start := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", start)
	s := testSigner(t, 7)
	tr := trust(t, s)
	newest := func() time.Time {
		var max time.Time
		for uri, der := range f.src {
			if !strings.HasSuffix(uri, ".mft") {
				continue
			}
			so, err := rpki.ParseSignedObject(der)
			if err != nil {
				t.Fatal(err)
			}
			m, err := rpki.ParseManifest(so.Content)
			if err != nil {
				t.Fatal(err)
			}
			if m.ThisUpdate.After(max) {
				max = m.ThisUpdate
			}
		}
		return max
	}
	var pub *Publication
	fs := files{}
	var st *State
	for i := range 3 {
		now := start.Add(time.Duration(i) * 2 * time.Hour)
		if i > 0 {
			f.advance(now, 1)
		}
		_, groups := validateAndBuild(t, f.src, []rpki.TrustAnchor{f.ta()}, now, s, i == 1)
		var out []File
		var err error
		if pub == nil {
			pub, out, err = New("s", groups, s, Options{})
		} else {
			pub, out, err = pub.Next(groups, s, Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		fs.add(out)
		want := newest()
		if i > 0 && !want.After(start) {
			t.Fatalf("serial %d: the generator reissued no manifest after %s", pub.Serial, start)
		}
		for _, from := range []*State{st, nil} {
			next, _, err := Sync(from, fs[NotificationName], fs.fetch, tr, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := next.Issued(); !got.Equal(want) {
				t.Errorf("serial %d: Issued %s, want the newest manifest thisUpdate %s", pub.Serial, got, want)
			}
			if from == st {
				st = next
			}
		}
	}
	if got := (&State{}).Issued(); !got.IsZero() {
		t.Errorf("an empty state: Issued %s, want zero", got)
	}
}
