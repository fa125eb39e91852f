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
	return base, pki.CAFile
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
