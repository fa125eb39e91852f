package repotest

import (
	"bytes"
	"context"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// testSplitURL serves the second repository of the split trees of the
// tests: the host of testBaseURL on another port, as two origins on one
// loopback interface are, so that only the rsync module tells the two
// repositories' URIs apart.
const testSplitURL = "https://rrdp.example.net:9443/"

// newSplit creates a small split tree in a fresh directory.
func newSplit(t *testing.T, seed int64) (*Repo, string) {
	t.Helper()
	p, err := LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := Create(dir, Config{Profile: p, Seed: seed, BaseURL: testBaseURL, Split: testSplitURL}, testNow, Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// repoObjects returns the objects of the current snapshot of every
// repository of info, by index in info.Repositories.
func repoObjects(t *testing.T, dir string, info Info) []map[string][]byte {
	t.Helper()
	var out []map[string][]byte
	for _, r := range info.Repositories {
		out = append(out, snapshotObjects(t, filepath.Join(dir, r.Dir), r.Snapshot))
	}
	return out
}

// validateObjects runs rpki.Validator over the union of objs at testNow
// and returns its VRPs and the URIs of the CAs that failed.
func validateObjects(t *testing.T, ta rpki.TrustAnchor, objs ...map[string][]byte) ([]rpki.VRP, []string) {
	t.Helper()
	src := rpki.MapSource{}
	for _, m := range objs {
		maps.Copy(src, m)
	}
	v, err := rpki.NewValidator(rpki.Config{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.Validate(context.Background(), []rpki.TrustAnchor{ta}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var vrps []rpki.VRP
	for _, x := range res.VRPs {
		vrps = append(vrps, x.VRP)
	}
	var failed []string
	for _, ca := range res.CAs {
		if ca.Err != nil {
			failed = append(failed, ca.URI)
		}
	}
	return rpki.SortVRPs(vrps), failed
}

// vrpsWhere returns the VRPs of the CAs of r for which keep is true.
func vrpsWhere(r *Repo, keep func(*caState) bool) []rpki.VRP {
	var out []rpki.VRP
	for _, ca := range r.s.CAs {
		if ca == nil || !keep(ca) {
			continue
		}
		for _, ro := range ca.ROAs {
			roa := r.s.roa(ca, ro)
			for _, p := range roa.Prefixes {
				ml := p.MaxLength
				if ml == 0 {
					ml = p.Prefix.Bits()
				}
				out = append(out, rpki.VRP{ASN: roa.ASID, Prefix: p.Prefix, MaxLength: ml})
			}
		}
	}
	return rpki.SortVRPs(out)
}

// TestSplit builds a tree split over two RRDP repositories and checks
// where everything is published: the TA, the intermediates and every CA
// certificate in the first, the delegated members' points in the second,
// each repository with its own notification and session; the tree
// validates whole only from both; from the first alone the delegated CAs
// fail, and from the second alone nothing validates (no TA).
func TestSplit(t *testing.T) {
	r, dir := newSplit(t, 11)
	info := r.Info()
	if len(info.Repositories) != 2 {
		t.Fatalf("%d repositories, want 2", len(info.Repositories))
	}
	a, b := info.Repositories[0], info.Repositories[1]
	if b.Dir != SplitDir || b.BaseURL != testSplitURL || b.SessionID == a.SessionID || b.Serial != 1 {
		t.Errorf("second repository %+v, want %s at %s, serial 1, its own session", b, SplitDir, testSplitURL)
	}
	const rsyncA, rsyncB = "rsync://rrdp.example.net/repo/", "rsync://rrdp.example.net/delegated/"
	delegated := 0
	for _, ca := range r.CAs() {
		want := ca.Member && ca.ID%2 == 1
		if ca.Delegated != want {
			t.Errorf("CA %d: delegated %v, want %v", ca.ID, ca.Delegated, want)
		}
		base, notify := rsyncA, testBaseURL+NotificationPath
		if ca.Delegated {
			base, notify = rsyncB, testSplitURL+NotificationPath
			delegated++
		}
		if !strings.HasPrefix(ca.URI, base) || ca.Notify != notify {
			t.Errorf("CA %d: point %s, notification %s; want below %s, %s", ca.ID, ca.URI, ca.Notify, base, notify)
		}
	}
	if delegated == 0 || delegated == len(r.CAs())-3 {
		t.Fatalf("%d of %d CAs delegated, want some members, not all", delegated, len(r.CAs()))
	}
	objs := repoObjects(t, dir, info)
	for u := range objs[0] {
		if !strings.HasPrefix(u, rsyncA) {
			t.Errorf("first repository publishes %s", u)
		}
	}
	for u := range objs[1] {
		if !strings.HasPrefix(u, rsyncB) {
			t.Errorf("second repository publishes %s", u)
		}
	}
	for _, ca := range r.CAs() {
		if ca.Parent < 0 {
			continue
		}
		if _, ok := objs[0][r.s.dir(r.s.CAs[ca.Parent])+r.s.CAs[ca.ID].certName()]; !ok {
			t.Errorf("CA %d: certificate not in its parent's point in the first repository", ca.ID)
		}
	}
	checkNotification(t, dir, info)
	checkVRPs(t, r, dir, testNow)

	ta := repoTA(t, dir)
	all, failed := validateObjects(t, ta, objs[0], objs[1])
	if d := rpki.DiffVRPs(all, rpki.SortVRPs(r.VRPs()), 10); d != "" || len(failed) != 0 {
		t.Errorf("both repositories: failing CAs %v; VRPs differ from the generator's:\n%s", failed, d)
	}
	onlyA, failed := validateObjects(t, ta, objs[0])
	if d := rpki.DiffVRPs(onlyA, vrpsWhere(r, func(ca *caState) bool { return !ca.Delegated }), 10); d != "" {
		t.Errorf("first repository alone: VRPs differ from the non-delegated CAs':\n%s", d)
	}
	if len(failed) != delegated {
		t.Errorf("first repository alone: %d CAs fail (%v), want the %d delegated", len(failed), failed, delegated)
	}
	if onlyB, _ := validateObjects(t, ta, objs[1]); len(onlyB) != 0 {
		t.Errorf("second repository alone: %d VRPs, want none", len(onlyB))
	}
}

// TestSplitDeltas evolves a split tree: each repository's deltas chain
// from its own previous snapshot, a repository that a step does not touch
// gets no serial, and a session reset resets both. RemoveCA of a
// delegated member makes a serial in each: the first one's alone (the
// parent revoking and withdrawing the certificate) already removes the
// member's VRPs, which are still published in the second.
func TestSplitDeltas(t *testing.T) {
	r, dir := newSplit(t, 12)
	ta := repoTA(t, dir)
	step := func(what string, f func() error) (before, after Info) {
		t.Helper()
		before = r.Info()
		objs := repoObjects(t, dir, before)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		after = r.Info()
		for i, rp := range after.Repositories {
			was := before.Repositories[i]
			if rp.SessionID != was.SessionID {
				continue
			}
			for _, d := range rp.Deltas {
				if d.Serial > was.Serial {
					_, elems := readRRDP(t, filepath.Join(dir, rp.Dir), d)
					applyDelta(t, objs[i], elems)
				}
			}
			got := snapshotObjects(t, filepath.Join(dir, rp.Dir), rp.Snapshot)
			if !maps.EqualFunc(objs[i], got, bytes.Equal) {
				t.Errorf("%s: snapshot %d of %s is not snapshot %d plus the deltas", what, rp.Serial, rp.BaseURL, was.Serial)
			}
			if rp.Serial == was.Serial && rp.Snapshot != was.Snapshot {
				t.Errorf("%s: %s has a new snapshot without a new serial", what, rp.BaseURL)
			}
		}
		checkNotification(t, dir, after)
		checkVRPs(t, r, dir, testNow)
		return before, after
	}
	before, after := step("three serials", func() error { return r.Advance(testNow, 3) })
	if after.Serial != before.Serial+3 {
		t.Errorf("three serials: the first repository at serial %d, want %d", after.Serial, before.Serial+3)
	}

	var member CA
	for _, ca := range r.CAs() {
		if ca.Delegated && ca.ROAs > 0 {
			member = ca
			break
		}
	}
	if member.ID == 0 {
		t.Fatal("no delegated member with ROAs")
	}
	gone := vrpsWhere(r, func(ca *caState) bool { return ca.ID == member.ID })
	before, after = step("remove a delegated CA", func() error { return r.RemoveCA(testNow, member.ID) })
	for i, rp := range after.Repositories {
		if rp.Serial != before.Repositories[i].Serial+1 {
			t.Errorf("remove a delegated CA: %s at serial %d, want %d", rp.BaseURL, rp.Serial, before.Repositories[i].Serial+1)
		}
	}
	for _, ca := range r.CAs() {
		if ca.ID == member.ID {
			t.Errorf("CA %d still in the tree", ca.ID)
		}
	}
	// The first repository's new state with the second's old one: the
	// member's point is still there, its certificate is not.
	newA := repoObjects(t, dir, after)[0]
	oldB := repoObjects(t, dir, before)[1]
	if _, ok := oldB[member.URI+"ca-"+strconv.Itoa(member.ID)+".mft"]; !ok {
		t.Fatalf("the removed CA's manifest is not in the second repository's previous snapshot")
	}
	got, _ := validateObjects(t, ta, newA, oldB)
	if d := rpki.DiffVRPs(got, rpki.SortVRPs(r.VRPs()), 10); d != "" {
		t.Errorf("the first repository's serial alone: VRPs differ from the generator's:\n%s", d)
	}
	if len(gone) == 0 {
		t.Error("the removed CA had no VRP")
	}
	for _, v := range got {
		for _, g := range gone {
			if v == g {
				t.Errorf("VRP %v of the removed CA still validates", v)
			}
		}
	}

	var plain CA
	for _, ca := range r.CAs() {
		if ca.Member && !ca.Delegated {
			plain = ca
		}
	}
	before, after = step("remove a CA of the first repository", func() error { return r.RemoveCA(testNow, plain.ID) })
	if a, b := after.Repositories[0].Serial-before.Repositories[0].Serial, after.Repositories[1].Serial-before.Repositories[1].Serial; a != 1 || b != 0 {
		t.Errorf("remove a CA of the first repository: serials moved by %d and %d, want 1 and 0", a, b)
	}

	before, after = step("session reset", func() error { return r.ResetSession(testNow) })
	for i, rp := range after.Repositories {
		if rp.SessionID == before.Repositories[i].SessionID || rp.Serial != 1 || len(rp.Deltas) != 0 {
			t.Errorf("session reset: %s session %s serial %d, %d deltas; want a new session at serial 1", rp.BaseURL, rp.SessionID, rp.Serial, len(rp.Deltas))
		}
	}

	for _, id := range []int{0, 1, member.ID, plain.ID, 10000} {
		if err := r.RemoveCA(testNow, id); err == nil {
			t.Errorf("RemoveCA(%d): no error", id)
		}
	}
}
