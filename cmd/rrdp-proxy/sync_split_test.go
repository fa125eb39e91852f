package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// splitCompact is a tree split over two RRDP repositories (rrdp-proxy gen
// --split), each served over HTTPS on the loopback interface, copied into
// a tree per repository by rrdp-proxy sync, and published in the compact
// form per repository (rrdp-proxy compact --repository) by two more HTTPS
// origins, as serve publishes one compact form per repository.
type splitCompact struct {
	t        *testing.T
	pki      *rp.PKI
	dir, tal string
	keys     string // keygen's directory: key.pem, key.pub
	xml      [2]*rp.Origin
	notify   [2]string // the RRDP notification URIs, as the CAs name them
	trees    [2]string
	pubs     [2]string // the compact origins' directories
	urls     [2]string // the compact notifications
	pubOrig  [2]*rp.Origin
	rcCache  string // rpki-client's cache, kept across its runs
}

func newSplitCompact(t *testing.T) *splitCompact {
	t.Helper()
	s := &splitCompact{t: t, dir: t.TempDir(), keys: t.TempDir(), rcCache: t.TempDir()}
	var err error
	if s.pki, err = rp.NewPKI(t.TempDir(), rp.PKIConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.dir, repotest.SplitDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, d := range []string{s.dir, filepath.Join(s.dir, repotest.SplitDir)} {
		if s.xml[i], err = rp.NewOrigin(rp.OriginConfig{Dir: d, PKI: s.pki, NoIPv6: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.xml[i].Close() })
		s.notify[i] = s.xml[i].URL() + repotest.NotificationPath
		s.trees[i] = filepath.Join(t.TempDir(), "tree")
		s.pubs[i] = t.TempDir()
		if err := os.Chmod(s.pubs[i], 0o755); err != nil {
			t.Fatal(err)
		}
		if s.pubOrig[i], err = rp.NewOrigin(rp.OriginConfig{Dir: s.pubs[i], PKI: s.pki, NoIPv6: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.pubOrig[i].Close() })
		s.urls[i] = s.pubOrig[i].URL() + compact.NotificationName
	}
	s.tal = filepath.Join(s.dir, repotest.TALPath)
	if code, _, stderr := runCLI(t, "keygen", "--out", s.keys); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	s.gen("--base-url", s.xml[0].URL(), "--split", s.xml[1].URL(), "--seed", "3")
	return s
}

// gen runs rrdp-proxy gen on the tree's directory.
func (s *splitCompact) gen(args ...string) {
	s.t.Helper()
	code, out, stderr := runCLI(s.t, append([]string{"gen", "--out", s.dir, "--key-cache", keyCache, "--quiet"}, args...)...)
	if code != 0 {
		s.t.Fatalf("gen %v: exit %d: %s", args, code, stderr)
	}
	s.t.Log(strings.TrimSpace(out))
}

// syncTrees copies both repositories into their trees (rrdp-proxy sync).
func (s *splitCompact) syncTrees() {
	s.t.Helper()
	for i, o := range s.xml {
		if code, _, stderr := runCLI(s.t, "sync", "--once", "--ca-file", s.pki.CAFile, "--out", s.trees[i], o.URL()+repotest.NotificationPath); code != 0 {
			s.t.Fatalf("sync %s: exit %d: %s", o.URL(), code, stderr)
		}
	}
}

// publish writes repository i's compact publication under out from both
// trees, signed by key.
func (s *splitCompact) publish(i int, out, key string, extra ...string) string {
	s.t.Helper()
	args := append([]string{"compact", "--tal", s.tal, "--key", key, "--repository", s.notify[i]}, extra...)
	code, stdout, stderr := runCLI(s.t, append(args, s.trees[0], s.trees[1], out)...)
	if code != 0 {
		s.t.Fatalf("compact --repository %s: exit %d: %s", s.notify[i], code, stderr)
	}
	return stdout
}

// publishBoth publishes both repositories in their origins' directories.
func (s *splitCompact) publishBoth() {
	s.t.Helper()
	for i := range s.pubs {
		s.publish(i, s.pubs[i], filepath.Join(s.keys, "key.pem"))
	}
}

// client runs the compact client on urls, writing vrps; it returns the
// exit code, the outputs and the VRPs written.
func (s *splitCompact) client(vrps string, urls ...string) (code int, stdout, stderr, csv string) {
	s.t.Helper()
	args := []string{"sync", "--once", "--ca-file", s.pki.CAFile, "--trust", filepath.Join(s.keys, "key.pub"), "--vrps", vrps}
	code, stdout, stderr = runCLI(s.t, append(args, urls...)...)
	b, err := os.ReadFile(vrps)
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	return code, stdout, stderr, string(b)
}

// validate returns rrdp-proxy validate's CSV over trees: the legacy path,
// equal to rpki-client's on the same repositories (TestValidateSplitTree).
func (s *splitCompact) validate(trees ...string) string {
	s.t.Helper()
	code, stdout, stderr := runCLI(s.t, append([]string{"validate", "--tal", s.tal}, trees...)...)
	if code != 0 {
		s.t.Fatalf("validate %v: exit %d: %s", trees, code, stderr)
	}
	return stdout
}

// wantWhole checks that csv holds the generator's VRPs, as validate
// writes them over both trees.
func (s *splitCompact) wantWhole(step, csv string) {
	s.t.Helper()
	want, err := rp.ReadVRPCSV(filepath.Join(s.dir, repotest.VRPPath))
	if err != nil {
		s.t.Fatal(err)
	}
	if len(want) == 0 {
		s.t.Fatalf("%s: no expected VRPs", step)
	}
	got, err := rpki.ParseVRPCSV([]byte(csv))
	if err != nil {
		s.t.Fatalf("%s: the client's CSV: %v\n%s", step, err, csv)
	}
	if d := rpki.DiffVRPs(got, want, 10); d != "" {
		s.t.Errorf("%s: the client's VRPs differ from the generator's expected-vrps.csv:\n%s", step, d)
	}
	if v := s.validate(s.trees[0], s.trees[1]); csv != v {
		s.t.Errorf("%s: the client's CSV differs from validate's over both trees:\ngot:\n%s\nwant:\n%s", step, csv, v)
	}
}

// newestDelta returns the file of the newest delta that the compact
// notification in pub names.
func (s *splitCompact) newestDelta(pub string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(pub, filepath.FromSlash(compact.NotificationName)))
	if err != nil {
		s.t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(s.keys, "key.pub"))
	if err != nil {
		s.t.Fatal(err)
	}
	keys, err := compact.ParseKeys(pem)
	if err != nil {
		s.t.Fatal(err)
	}
	nt, err := compact.ParseNotification(b, keys)
	if err != nil {
		s.t.Fatal(err)
	}
	var uri string
	var serial uint64
	for _, d := range nt.Deltas {
		if d.Serial > serial {
			uri, serial = d.Uri, d.Serial
		}
	}
	if uri == "" {
		s.t.Fatalf("%s lists no delta", compact.NotificationName)
	}
	return uri
}

// copyTree returns a copy of dir, taken now.
func copyTree(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(to, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestSyncCompactSplit follows the compact publications of a tree split
// over two repositories with one client (rrdp-proxy sync --trust FILE
// --vrps OUT URL_A URL_B): its VRPs are the generator's expected-vrps.csv,
// as validate writes them over both trees (and, where it can run,
// rpki-client over both RRDP repositories), at the first serial and after
// a serial in each repository, taken as deltas; a client following one
// publication gets the subset without failing, with warnings naming the
// CAs left out and their issuers; the lean form works across the two.
func TestSyncCompactSplit(t *testing.T) {
	s := newSplitCompact(t)
	s.syncTrees()
	s.publishBoth()
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	code, stdout, stderr, csv := s.client(vrps, s.urls[0], s.urls[1])
	if code != 0 {
		t.Fatalf("serial 1: exit %d: %s%s", code, stdout, stderr)
	}
	t.Logf("serial 1: %s", stdout)
	s.wantWhole("serial 1", csv)
	for _, u := range s.urls {
		if !strings.Contains(stdout, u+": session ") || !strings.Contains(stdout, " serial 1 (from the snapshot)") {
			t.Errorf("serial 1: %s is not reported from its snapshot:\n%s", u, stdout)
		}
	}
	if strings.Contains(stderr, "left out") {
		t.Errorf("serial 1: CAs left out with both publications:\n%s", stderr)
	}
	state, err := os.ReadFile(vrps + ".state/compact-state.bin")
	if err != nil {
		t.Fatal(err)
	}
	byURL, _, err := compact.UnmarshalStates(state)
	if err != nil || len(byURL) != 2 || byURL[s.urls[0]] == nil || byURL[s.urls[1]] == nil {
		t.Fatalf("the state file: %v, %d states, want one per URL", err, len(byURL))
	}
	// A state file of version 1 (one publication, no URL), as the client
	// wrote before it followed several: taken over by the publication of
	// its session, which then advances by deltas.
	legacyVRPs := filepath.Join(t.TempDir(), "legacy.csv")
	if err := os.MkdirAll(legacyVRPs+".state", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacyVRPs+".state/compact-state.bin", byURL[s.urls[1]].Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("rpki-client", func(t *testing.T) { s.rpkiClient(t, "serial 1", csv) })

	// One publication alone: the subset its CAs give, no failure.
	onlyA, onlyB := filepath.Join(t.TempDir(), "a.csv"), filepath.Join(t.TempDir(), "b.csv")
	oneA := func(step string) {
		t.Helper()
		code, stdout, stderr, csv := s.client(onlyA, s.urls[0])
		if code != 0 {
			t.Fatalf("%s: the first publication alone: exit %d: %s%s", step, code, stdout, stderr)
		}
		whole, err := rpki.ParseVRPCSV([]byte(s.validate(s.trees[0], s.trees[1])))
		if err != nil {
			t.Fatal(err)
		}
		if want := s.validate(s.trees[0]); csv != want || strings.Count(csv, "\n") < 2 || strings.Count(csv, "\n") > len(whole) {
			t.Errorf("%s: the first publication alone: the CSV differs from validate's over the first tree, or is not a proper subset:\ngot:\n%s\nwant:\n%s", step, csv, want)
		}
		// The issuer's publication does not name the delegated CAs
		// (an iMFT lists no child certificate): nothing to warn of.
		if strings.Contains(stderr, "left out") {
			t.Errorf("%s: the first publication alone: CAs left out:\n%s", step, stderr)
		}
	}
	oneA("serial 1")
	code, stdout, stderr, csv = s.client(onlyB, s.urls[1])
	if code != 0 || csv != "ASN,IP Prefix,Max Length,Trust Anchor,Expires\n" {
		t.Errorf("the second publication alone: exit %d, want 0 and no VRPs: %s%s\n%s", code, stdout, stderr, csv)
	}
	// Each delegated CA is named (a group is named after its CA's
	// certificate, in its issuer's point), with its issuer's group.
	cas := map[int]repotest.CA{}
	for _, ca := range repotestCAs(t, s) {
		cas[ca.ID] = ca
	}
	delegated := 0
	for _, ca := range cas {
		if !ca.Delegated {
			continue
		}
		delegated++
		issuer := cas[ca.Parent]
		cert := fmt.Sprintf("%sca-%d.cer", issuer.URI, ca.ID)
		if !strings.Contains(stderr, "ca="+cert+" issuer=") || !strings.Contains(stderr, "publication="+s.urls[1]) {
			t.Errorf("the second publication alone: no warning names CA %s and its publication:\n%s", cert, stderr)
		}
	}
	if delegated == 0 || strings.Count(stderr, "is in no publication followed") != delegated {
		t.Errorf("the second publication alone: want a warning for each of the %d delegated CAs, naming the issuer missing:\n%s", delegated, stderr)
	}

	t.Run("lean", func(t *testing.T) { s.lean(t) })

	// A serial in each repository: both publications advance by a delta.
	s.gen("--advance", "1")
	s.syncTrees()
	s.publishBoth()
	code, stdout, stderr, csv = s.client(vrps, s.urls[0], s.urls[1])
	if code != 0 {
		t.Fatalf("serial 2: exit %d: %s%s", code, stdout, stderr)
	}
	t.Logf("serial 2: %s", stdout)
	if strings.Count(stdout, "serial 2 (1 deltas)") != 2 {
		t.Errorf("serial 2: both publications did not advance by a delta:\n%s", stdout)
	}
	s.wantWhole("serial 2", csv)
	t.Run("rpki-client after deltas", func(t *testing.T) { s.rpkiClient(t, "serial 2", csv) })
	oneA("serial 2")

	code, stdout, stderr, csv = s.client(legacyVRPs, s.urls[0], s.urls[1])
	if code != 0 || !strings.Contains(stdout, s.urls[0]+": session ") || !strings.Contains(stdout, " serial 2 (from the snapshot)") || !strings.Contains(stdout, " serial 2 (1 deltas)") {
		t.Errorf("a state file of version 1: exit %d, want the second publication advanced by its delta, the first from its snapshot:\n%s%s", code, stdout, stderr)
	}
	s.wantWhole("a state file of version 1", csv)
}

// repotestCAs returns the CAs of the generated tree.
func repotestCAs(t *testing.T, s *splitCompact) []repotest.CA {
	t.Helper()
	r, err := repotest.Open(s.dir, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	return r.CAs()
}

// rpkiClient checks csv against rpki-client's over the two RRDP
// repositories, byte for byte; its cache dir carries over, so a later
// call applies the deltas.
func (s *splitCompact) rpkiClient(t *testing.T, step, csv string) {
	rp.Require(t, "root", "unshare", "mount", "rpki-client")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rc, err := rp.RunRPKIClient(ctx, rp.Options{TAL: s.tal, CAFile: s.pki.CAFile, CacheDir: s.rcCache})
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := rc.Err(); err != nil {
		t.Errorf("%s: %v", step, err)
	}
	if got := rc.Output["csv"]; !bytes.Equal(got, []byte(csv)) {
		vrps, _ := rpki.ParseVRPCSV([]byte(csv))
		t.Errorf("%s: the compact client's CSV differs from rpki-client's; as sets: %s", step, rpki.DiffVRPs(vrps, rc.VRPs, 10))
	}
	t.Logf("%s: equal to rpki-client's CSV (%v)", step, rc.Elapsed.Round(time.Millisecond))
}

// lean publishes both repositories with --omit-certificates as well, and
// follows the lean and full forms mixed: a lean CA record below a
// certificate in another publication verifies (resources within the
// issuer's); a certificate below a CA record of another publication cannot
// be checked, so that CA is left out with a warning, not a failure.
func (s *splitCompact) lean(t *testing.T) {
	var lean [2]string
	for i := range s.pubs {
		out := filepath.Join(s.pubs[i], "lean")
		s.publish(i, out, filepath.Join(s.keys, "key.pem"), "--omit-certificates")
		lean[i] = s.pubOrig[i].URL() + "lean/" + compact.NotificationName
	}
	whole := s.validate(s.trees[0], s.trees[1])
	for _, c := range []struct {
		name string
		urls []string
		want string
		warn string
	}{
		{"both lean", []string{lean[0], lean[1]}, whole, ""},
		{"the delegated CAs lean", []string{s.urls[0], lean[1]}, whole, ""},
		{"their issuers lean", []string{lean[0], s.urls[1]}, s.validate(s.trees[0]), "carries a CA record (--omit-certificates)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr, csv := s.client(filepath.Join(t.TempDir(), "vrps.csv"), c.urls...)
			if code != 0 || csv != c.want {
				t.Errorf("exit %d, want 0 and validate's CSV: %s%s\ngot:\n%s\nwant:\n%s", code, stdout, stderr, csv, c.want)
			}
			if c.warn == "" && strings.Contains(stderr, "left out") || c.warn != "" && !strings.Contains(stderr, c.warn) {
				t.Errorf("want the warning %q: %s", c.warn, stderr)
			}
		})
	}
}

// TestSyncCompactSplitReject breaks one of the two publications of a split
// tree in three ways: a truncated delta, a notification signed by another
// key (forged), a replayed older notification. Each time the other
// publication advances, the broken one keeps its previous verified state,
// the error names its URL and what failed, sync exits 1, and the VRPs
// written are those of the new and the kept states together: validate's
// over the first repository's new tree and the second's previous one.
// Once repaired, the broken publication advances by its deltas from the
// state kept.
func TestSyncCompactSplitReject(t *testing.T) {
	s := newSplitCompact(t)
	s.syncTrees()
	s.publishBoth()
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	if code, stdout, stderr, _ := s.client(vrps, s.urls[0], s.urls[1]); code != 0 {
		t.Fatalf("serial 1: exit %d: %s%s", code, stdout, stderr)
	}
	key := filepath.Join(s.keys, "key.pem")
	other := t.TempDir()
	if code, _, stderr := runCLI(t, "keygen", "--out", other); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	// advance makes a serial in both repositories and returns a copy of
	// the second's tree before it.
	advance := func() string {
		t.Helper()
		s.gen("--advance", "1")
		old := copyTree(t, s.trees[1])
		s.syncTrees()
		return old
	}
	// rejected runs the client with the second publication broken.
	rejected := func(step string, serialA, serialB int, oldB string, want ...string) {
		t.Helper()
		code, stdout, stderr, csv := s.client(vrps, s.urls[0], s.urls[1])
		t.Logf("%s: exit %d: %s%s", step, code, stdout, stderr)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", step, code)
		}
		for _, w := range append([]string{"rrdp-proxy sync: " + s.urls[1] + ": ", "each publication that failed keeps its previous state"}, want...) {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: the error does not say %q:\n%s", step, w, stderr)
			}
		}
		if strings.Contains(stderr, s.urls[0]+": ") {
			t.Errorf("%s: the first publication is reported failing:\n%s", step, stderr)
		}
		how := fmt.Sprintf("serial %d (1 deltas)", serialA)
		if serialA == 0 {
			how = "(unchanged)"
		}
		if !strings.Contains(stdout, s.urls[0]+": session ") || !strings.Contains(stdout, how) {
			t.Errorf("%s: the first publication did not advance (want %q):\n%s", step, how, stdout)
		}
		if kept := fmt.Sprintf("serial %d (failed, its state kept)", serialB); !strings.Contains(stdout, s.urls[1]+": session ") || !strings.Contains(stdout, kept) {
			t.Errorf("%s: the second publication: want %q:\n%s", step, kept, stdout)
		}
		if want := s.validate(s.trees[0], oldB); csv != want {
			t.Errorf("%s: the VRPs are not those of the first's new state and the second's kept one (validate over the trees):\ngot:\n%s\nwant:\n%s", step, csv, want)
		}
	}
	repaired := func(step string, serial int) {
		t.Helper()
		code, stdout, stderr, csv := s.client(vrps, s.urls[0], s.urls[1])
		if code != 0 || !strings.Contains(stdout, s.urls[1]+": session ") || !strings.Contains(stdout, fmt.Sprintf("serial %d (1 deltas)", serial)) {
			t.Errorf("%s: exit %d, want 0 and the second publication advanced by its delta:\n%s%s", step, code, stdout, stderr)
		}
		s.wantWhole(step, csv)
	}

	t.Log("a truncated delta")
	oldB := advance()
	s.publishBoth()
	delta := s.newestDelta(s.pubs[1])
	file := filepath.Join(s.pubs[1], "compact", filepath.FromSlash(delta))
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	rejected("truncated delta", 2, 1, oldB, delta+": ", "hash mismatch")
	if err := os.WriteFile(file, good, 0o644); err != nil {
		t.Fatal(err)
	}
	repaired("the delta repaired", 2)

	t.Log("a notification signed by another key")
	oldB = advance()
	s.publish(0, s.pubs[0], key)
	forged := copyTree(t, s.pubs[1])
	s.publish(1, forged, filepath.Join(other, "key.pem"))
	real := filepath.Join(s.pubs[1], "compact")
	swap := func(a, b string) {
		t.Helper()
		tmp := a + ".swap"
		for _, r := range [][2]string{{a, tmp}, {b, a}, {tmp, b}} {
			if err := os.Rename(r[0], r[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	swap(real, filepath.Join(forged, "compact"))
	rejected("forged notification", 3, 2, oldB, "notification: bad signature: signed by key", "not a trusted key")
	swap(real, filepath.Join(forged, "compact"))
	s.publish(1, s.pubs[1], key)
	repaired("signed by the key again", 3)

	t.Log("a replayed older notification")
	notification := filepath.Join(s.pubs[1], filepath.FromSlash(compact.NotificationName))
	third, err := os.ReadFile(notification)
	if err != nil {
		t.Fatal(err)
	}
	advance()
	s.publishBoth()
	repaired("serial 4", 4)
	fourth := copyTree(t, s.trees[1])
	if err := os.WriteFile(notification, third, 0o644); err != nil {
		t.Fatal(err)
	}
	advance()
	s.publish(0, s.pubs[0], key)
	rejected("replayed notification", 5, 4, fourth, "replayed older state: notification of serial 3, below serial 4")
}
