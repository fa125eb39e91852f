package repotest

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const testBaseURL = "https://rrdp.example.net:8443/repo/"

// tree returns every file below dir by relative path.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// history runs the same operations on a repository: create, two serials,
// one more two days later, a session reset and one more serial.
// With split, the tree is split over two repositories (Config.Split).
func history(t *testing.T, seed int64, workers int, split string) string {
	t.Helper()
	p, _ := LookupProfile("small")
	dir := t.TempDir()
	opts := Options{KeyCache: keyCache, Workers: workers}
	r, err := Create(dir, Config{Profile: p, Seed: seed, BaseURL: testBaseURL, Split: split}, testNow, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(testNow, 2); err != nil {
		t.Fatal(err)
	}
	// Reopened, as a later "gen --advance" does.
	if r, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(testNow.Add(48*time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	if err := r.ResetSession(testNow.Add(48 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.Advance(testNow.Add(48*time.Hour), 1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDeterminism(t *testing.T) {
	for _, c := range []struct{ name, split string }{{"one repository", ""}, {"split", testSplitURL}} {
		t.Run(c.name, func(t *testing.T) {
			a := tree(t, history(t, 7, 1, c.split))
			b := tree(t, history(t, 7, 3, c.split))
			if !slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b))) {
				t.Fatalf("different files:\n%v\n%v", slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
			}
			for name, data := range a {
				if !bytes.Equal(data, b[name]) {
					t.Errorf("%s differs between two runs with the same seed", name)
				}
			}
			other := tree(t, history(t, 8, 2, c.split))
			if bytes.Equal(a[VRPPath], other[VRPPath]) || bytes.Equal(a[TALPath], other[TALPath]) {
				t.Errorf("seeds 7 and 8 give the same VRPs or TAL")
			}
		})
	}
}

// applyDelta applies a delta to a snapshot's objects, checking the hash
// attributes as a relying party must.
func applyDelta(t *testing.T, objs map[string][]byte, elems []rrdpElem) (published, withdrawn int) {
	t.Helper()
	for _, e := range elems {
		old, exists := objs[e.uri]
		switch {
		case e.withdraw:
			if !exists || sha256.Sum256(old) != *e.hash {
				t.Errorf("withdraw %s: object absent or hash differs", e.uri)
			}
			delete(objs, e.uri)
			withdrawn++
			continue
		case e.hash == nil && exists:
			t.Errorf("publish %s without hash, but it exists", e.uri)
		case e.hash != nil && (!exists || sha256.Sum256(old) != *e.hash):
			t.Errorf("publish %s with hash: object absent or hash differs", e.uri)
		}
		objs[e.uri] = e.content
		published++
	}
	return published, withdrawn
}

func TestDeltasChain(t *testing.T) {
	r, dir := newSmall(t, 3, testNow, testBaseURL)
	checkVRPs(t, r, dir, testNow)
	steps := []struct {
		name  string
		reset bool
		n     int
	}{
		{"one serial", false, 1},
		{"one more", false, 1},
		{"three at once", false, 3},
		{"session reset", true, 0},
		{"two after the reset", false, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := r.Info()
			objs := snapshotObjects(t, dir, before.Snapshot)
			var err error
			if st.reset {
				err = r.ResetSession(testNow)
			} else {
				err = r.Advance(testNow, st.n)
			}
			if err != nil {
				t.Fatal(err)
			}
			after := r.Info()
			if st.reset {
				if after.SessionID == before.SessionID || after.Serial != 1 || len(after.Deltas) != 0 {
					t.Fatalf("after reset: session %s serial %d, %d deltas; want a new session, serial 1, no delta",
						after.SessionID, after.Serial, len(after.Deltas))
				}
			} else {
				if after.SessionID != before.SessionID || after.Serial != before.Serial+uint64(st.n) {
					t.Fatalf("got session %s serial %d, want %s serial %d", after.SessionID, after.Serial, before.SessionID, before.Serial+uint64(st.n))
				}
				deltas := after.Deltas[len(after.Deltas)-st.n:]
				for i, d := range deltas {
					h, elems := readRRDP(t, dir, d)
					want := before.Serial + uint64(i) + 1
					if h.Kind != rrdpxml.KindDelta || h.SessionID != after.SessionID || h.Serial != want || d.Serial != want {
						t.Fatalf("delta %s: %v %s %d, want a delta of %s %d", d.Path, h.Kind, h.SessionID, h.Serial, after.SessionID, want)
					}
					if !slices.IsSortedFunc(elems, func(a, b rrdpElem) int { return strings.Compare(a.uri, b.uri) }) {
						t.Errorf("delta %d: elements not sorted by URI", want)
					}
					pub, wd := applyDelta(t, objs, elems)
					if pub == 0 || wd == 0 {
						t.Errorf("delta %d: %d publish and %d withdraw elements, want some of each", want, pub, wd)
					}
				}
			}
			h, _ := readRRDP(t, dir, after.Snapshot)
			if h.Kind != rrdpxml.KindSnapshot || h.SessionID != after.SessionID || h.Serial != after.Serial {
				t.Fatalf("snapshot header %v %s %d, want snapshot %s %d", h.Kind, h.SessionID, h.Serial, after.SessionID, after.Serial)
			}
			got := snapshotObjects(t, dir, after.Snapshot)
			if !maps.EqualFunc(objs, got, bytes.Equal) {
				t.Errorf("snapshot %d is not snapshot %d plus the deltas (%d objects, want %d)", after.Serial, before.Serial, len(got), len(objs))
			}
			if len(got) != after.Objects {
				t.Errorf("Info.Objects %d, snapshot has %d", after.Objects, len(got))
			}
			checkNotification(t, dir, after)
			checkVRPs(t, r, dir, testNow)
		})
	}
}

// checkNotification compares the notification of every repository of
// info with Info and the files.
func checkNotification(t *testing.T, dir string, info Info) {
	t.Helper()
	if r := info.Repositories[0]; r.Dir != "" || r.BaseURL != info.BaseURL || r.SessionID != info.SessionID || r.Serial != info.Serial ||
		r.Objects != info.Objects || r.Snapshot != info.Snapshot || !slices.Equal(r.Deltas, info.Deltas) {
		t.Errorf("Info.Repositories[0] %+v is not the first repository", r)
	}
	for _, r := range info.Repositories {
		checkRepoNotification(t, filepath.Join(dir, r.Dir), r)
	}
}

func checkRepoNotification(t *testing.T, dir string, info Repository) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, NotificationPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, _, err := rrdpxml.DecodeNotification(f, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n.SessionID != info.SessionID || n.Serial != info.Serial {
		t.Errorf("notification: session %s serial %d, want %s %d", n.SessionID, n.Serial, info.SessionID, info.Serial)
	}
	check := func(uri string, hash [32]byte) {
		rel, ok := strings.CutPrefix(uri, info.BaseURL)
		if !ok {
			t.Errorf("notification: %s is not below %s", uri, info.BaseURL)
			return
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Error(err)
			return
		}
		if sha256.Sum256(data) != hash {
			t.Errorf("notification: hash of %s differs from the file's", uri)
		}
	}
	check(n.Snapshot.URI, n.Snapshot.Hash)
	if n.Snapshot.URI != info.BaseURL+info.Snapshot.Path {
		t.Errorf("notification: snapshot %s, want %s", n.Snapshot.URI, info.BaseURL+info.Snapshot.Path)
	}
	if len(n.Deltas) != len(info.Deltas) {
		t.Fatalf("notification lists %d deltas, want %d", len(n.Deltas), len(info.Deltas))
	}
	for i, d := range n.Deltas {
		want := info.Deltas[len(info.Deltas)-1-i]
		if d.Serial != want.Serial || d.URI != info.BaseURL+want.Path {
			t.Errorf("notification delta %d: serial %d %s, want %d %s", i, d.Serial, d.URI, want.Serial, info.BaseURL+want.Path)
		}
		check(d.URI, d.Hash)
	}
}

// TestTimePasses advances a repository days and then more than a year
// after its creation: whatever expired or was about to is reissued, and
// the repository validates at the new time.
func TestTimePasses(t *testing.T) {
	r, dir := newSmall(t, 5, testNow, testBaseURL)
	for _, c := range []struct {
		name  string
		after time.Duration
	}{
		{"four days", 4 * 24 * time.Hour},
		{"thirteen months", 400 * 24 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := testNow.Add(c.after)
			if err := r.Advance(now, 1); err != nil {
				t.Fatal(err)
			}
			checkVRPs(t, r, dir, now)
		})
	}
	if err := r.Advance(testNow, 1); err == nil {
		t.Errorf("advance back in time: no error")
	}
}

func TestCreateTwice(t *testing.T) {
	_, dir := newSmall(t, 1, testNow, testBaseURL)
	p, _ := LookupProfile("small")
	if _, err := Create(dir, Config{Profile: p, Seed: 1, BaseURL: testBaseURL}, testNow, Options{KeyCache: keyCache}); err == nil {
		t.Errorf("create over a repository: no error")
	}
}

func TestBadConfig(t *testing.T) {
	small, _ := LookupProfile("small")
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"http URL", Config{Profile: small, BaseURL: "http://localhost/"}},
		{"no host", Config{Profile: small, BaseURL: "https:///x/"}},
		{"no members", Config{Profile: Profile{Name: "x", ROAs: 1}, BaseURL: testBaseURL}},
		{"fewer ROAs than members", Config{Profile: Profile{Name: "x", Members: 3, ROAs: 2}, BaseURL: testBaseURL}},
		{"http split URL", Config{Profile: small, BaseURL: testBaseURL, Split: "http://localhost/"}},
		{"split URL the base URL", Config{Profile: small, BaseURL: testBaseURL, Split: testBaseURL}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Create(t.TempDir(), c.cfg, testNow, Options{KeyCache: keyCache}); err == nil {
				t.Errorf("got no error")
			}
		})
	}
	if _, err := LookupProfile("huge"); err == nil {
		t.Errorf("LookupProfile(huge): no error")
	}
	for _, name := range ProfileNames() {
		p, err := LookupProfile(name)
		if err != nil || p.check() != nil {
			t.Errorf("profile %s: %v %v", name, err, p.check())
		}
	}
}

// TestIssuerName checks that the issuer name the builder computes is the
// subject name rpki.IssueCert writes.
func TestIssuerName(t *testing.T) {
	r, dir := newSmall(t, 1, testNow, testBaseURL)
	objs := snapshotObjects(t, dir, r.Info().Snapshot)
	n := 0
	for uri, der := range objs {
		if !strings.HasSuffix(uri, ".cer") {
			continue
		}
		c, err := rpki.ParseCert(der)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeName(c.SubjectCN)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Subject, want) {
			t.Errorf("%s: subject %x, encodeName gives %x", uri, c.Subject, want)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no certificate in the snapshot")
	}
}
