package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// writeRepo writes a synthetic repository into dir: notification.xml
// naming one snapshot, under a Krill-like path.
func writeRepo(t *testing.T, dir string, spec irpkitest.Spec) {
	t.Helper()
	session := irpkitest.Session(spec.Seed)
	spec.Serial = 1
	rel := session + "/1/rnd1/snapshot.xml"
	var snap, notif bytes.Buffer
	if err := irpkitest.WriteSnapshot(&snap, spec); err != nil {
		t.Fatal(err)
	}
	n := &rrdpxml.Notification{SessionID: session, Serial: 1}
	n.Snapshot.URI = "https://rrdp.example.net/rrdp/" + rel
	n.Snapshot.Hash = sha256.Sum256(snap.Bytes())
	if err := rrdpxml.EncodeNotification(&notif, n); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{rel: snap.Bytes(), "notification.xml": notif.Bytes()} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
