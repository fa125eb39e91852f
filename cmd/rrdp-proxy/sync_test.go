package main

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// serveRepo serves a synthetic repository over HTTPS with both
// notification.xml and notification.bin, and returns its base URL and the
// CA file.
func serveRepo(t *testing.T, spec irpkitest.Spec) (string, string) {
	o := serveRepoOrigin(t, spec)
	return o.base, o.ca
}

// repoOrigin is the origin of serveRepoOrigin: the base URL of the
// repository, the CA file, the served directory and the origin.
type repoOrigin struct {
	base, ca, dir string
	origin        *rp.Origin
}

// serveRepoOrigin is serveRepo, returning the origin too.
func serveRepoOrigin(t *testing.T, spec irpkitest.Spec) repoOrigin {
	t.Helper()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	base := o.URL() + "rrdp/"
	write := func(rel string, b []byte) [32]byte {
		p := filepath.Join(dir, "rrdp", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	session := irpkitest.Session(spec.Seed)
	var x, b bytes.Buffer
	if err := irpkitest.WriteSnapshot(&x, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := irpki.XMLToBin(&b, bytes.NewReader(x.Bytes()), irpki.Options{}); err != nil {
		t.Fatal(err)
	}
	n := &rrdpxml.Notification{SessionID: session, Serial: 1}
	n.Snapshot = rrdpxml.SnapshotRef{URI: base + session + "/1/snapshot.xml", Hash: write(session+"/1/snapshot.xml", x.Bytes())}
	var nx bytes.Buffer
	if err := rrdpxml.EncodeNotification(&nx, n); err != nil {
		t.Fatal(err)
	}
	write("notification.xml", nx.Bytes())
	n.Snapshot = rrdpxml.SnapshotRef{URI: base + session + "/1/snapshot.bin", Hash: write(session+"/1/snapshot.bin", b.Bytes())}
	nb, err := irpki.MarshalNotification(n)
	if err != nil {
		t.Fatal(err)
	}
	write("notification.bin", nb)
	return repoOrigin{base: base, ca: pki.CAFile, dir: dir, origin: o}
}

// readTree returns every file under dir by its slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestSyncXMLAndBinGiveTheSameTree(t *testing.T) {
	spec := irpkitest.Spec{Seed: 5, Objects: 300, MinSize: 64, MaxSize: 512}
	base, ca := serveRepo(t, spec)
	out := t.TempDir()
	dirs := map[string]string{"notification.xml": filepath.Join(out, "x"), "notification.bin": filepath.Join(out, "b")}
	for file, dir := range dirs {
		for range 2 { // the second run replaces the tree
			code, stdout, stderr := runCLI(t, "sync", "--once", "--ca-file", ca, "--out", dir, base+file)
			if code != 0 {
				t.Fatalf("sync %s: exit %d\n%s", file, code, stderr)
			}
			if !strings.Contains(stdout, "serial 1") {
				t.Errorf("sync %s: stdout %q, want the serial", file, stdout)
			}
		}
	}
	x, b := readTree(t, dirs["notification.xml"]), readTree(t, dirs["notification.bin"])
	if len(x) != spec.Objects+1 {
		t.Fatalf("got %d files, want %d objects and the marker", len(x), spec.Objects)
	}
	for p, c := range x {
		if !bytes.Equal(b[p], c) {
			t.Fatalf("%s differs between the XML and the .bin origin", p)
		}
	}
	if len(b) != len(x) {
		t.Fatalf("got %d files from .bin, %d from XML", len(b), len(x))
	}
	for _, o := range irpkitest.Objects(spec) {
		p := strings.TrimPrefix(o.URI, "rsync://")
		if !bytes.Equal(x[p], o.Content) {
			t.Fatalf("%s: content differs from the published object", p)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(out, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary trees left behind: %v", leftovers)
	}
}

func TestSyncRefuses(t *testing.T) {
	base, ca := serveRepo(t, irpkitest.Spec{Seed: 6, Objects: 10})
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no --out", []string{"sync", "--once", base + "notification.xml"}, 2, "--out is required"},
		{"unknown CA", []string{"sync", "--once", "--out", filepath.Join(t.TempDir(), "o"), base + "notification.xml"}, 1, "certificate"},
		{"foreign directory", []string{"sync", "--once", "--ca-file", ca, "--out", foreign, base + "notification.xml"}, 1, "not replacing"},
		{"missing CA file", []string{"sync", "--once", "--ca-file", "/nonexistent", "--out", t.TempDir(), base + "notification.xml"}, 1, "--ca-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("got exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(foreign, "precious")); err != nil {
		t.Fatalf("the foreign directory was touched: %v", err)
	}
}

// TestSyncStateSurvivesRestarts runs sync twice, the origin having
// published a delta in between: the second run fetches the delta and no
// snapshot, and gives the tree of the new serial.
func TestSyncStateSurvivesRestarts(t *testing.T) {
	spec := irpkitest.Spec{Seed: 7, Objects: 50, MinSize: 64, MaxSize: 256}
	o := serveRepoOrigin(t, spec)
	out := filepath.Join(t.TempDir(), "tree")
	run := func(serial string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, "sync", "--once", "--ca-file", o.ca, "--out", out, o.base+"notification.xml")
		if code != 0 || !strings.Contains(stdout, serial) {
			t.Fatalf("sync: exit %d, stdout %q, want %s\n%s", code, stdout, serial, stderr)
		}
	}
	run("serial 1")

	// Serial 2: one object added by a delta; a new snapshot beside it.
	session := irpkitest.Session(spec.Seed)
	objs := irpkitest.Objects(spec)
	added := irpkitest.Object{URI: "rsync://example.net/repo/added.roa", Content: []byte("added object")}
	write := func(rel string, b []byte) [32]byte {
		p := filepath.Join(o.dir, "rrdp", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	encode := func(kind rrdpxml.Kind, objs []irpkitest.Object) []byte {
		var buf bytes.Buffer
		w, err := rrdpxml.NewWriter(&buf, rrdpxml.Header{Kind: kind, SessionID: session, Serial: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, ob := range objs {
			if err := w.Publish(ob.URI, nil, ob.Content); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	n := &rrdpxml.Notification{SessionID: session, Serial: 2}
	n.Snapshot = rrdpxml.SnapshotRef{URI: o.base + session + "/2/snapshot.xml", Hash: write(session+"/2/snapshot.xml", encode(rrdpxml.KindSnapshot, append(objs, added)))}
	n.Deltas = []rrdpxml.DeltaRef{{Serial: 2, URI: o.base + session + "/2/delta.xml", Hash: write(session+"/2/delta.xml", encode(rrdpxml.KindDelta, []irpkitest.Object{added}))}}
	var nx bytes.Buffer
	if err := rrdpxml.EncodeNotification(&nx, n); err != nil {
		t.Fatal(err)
	}
	write("notification.xml", nx.Bytes())
	if err := o.origin.Reset(); err != nil {
		t.Fatal(err)
	}

	run("serial 2")
	counts, err := o.origin.Counts()
	if err != nil {
		t.Fatal(err)
	}
	snapshots, deltas := 0, 0
	for path, c := range counts {
		switch {
		case strings.Contains(path, "/snapshot."):
			snapshots += c
		case strings.Contains(path, "/delta."):
			deltas += c
		}
	}
	if snapshots != 0 || deltas != 1 {
		t.Errorf("the second run fetched %d snapshots and %d deltas, want 0 and 1 (requests %v)", snapshots, deltas, counts)
	}
	tree := readTree(t, out)
	if got := tree["example.net/repo/added.roa"]; string(got) != "added object" {
		t.Errorf("added object: got %q", got)
	}
	if len(tree) != len(objs)+2 {
		t.Errorf("got %d files, want %d objects and the marker", len(tree), len(objs)+1)
	}
}
