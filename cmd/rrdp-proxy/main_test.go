package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// writeRepo writes a synthetic repository: notification.xml naming a
// snapshot and one delta under Krill-like paths.
func writeRepo(t *testing.T, dir string, spec irpkitest.Spec, corruptHash bool) {
	t.Helper()
	session := irpkitest.Session(spec.Seed)
	write := func(rel string, fill func(*bytes.Buffer) error) [32]byte {
		var b bytes.Buffer
		if err := fill(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b.Bytes())
	}
	spec.Serial = 2
	snapRel := session + "/2/rnd1/snapshot.xml"
	deltaRel := session + "/2/rnd2/delta.xml"
	n := &rrdpxml.Notification{SessionID: session, Serial: 2}
	n.Snapshot.URI = "https://rrdp.example.net/rrdp/" + snapRel
	n.Snapshot.Hash = write(snapRel, func(b *bytes.Buffer) error { return irpkitest.WriteSnapshot(b, spec) })
	prev := spec
	prev.Serial = 1
	d := rrdpxml.DeltaRef{Serial: 2, URI: "https://rrdp.example.net/rrdp/" + deltaRel}
	d.Hash = write(deltaRel, func(b *bytes.Buffer) error { return irpkitest.WriteDelta(b, prev, 2, 5, 3) })
	n.Deltas = append(n.Deltas, d, rrdpxml.DeltaRef{Serial: 1, URI: "https://rrdp.example.net/rrdp/gone/delta.xml", Hash: [32]byte{9}})
	if corruptHash {
		n.Snapshot.Hash[0] ^= 1
	}
	write("notification.xml", func(b *bytes.Buffer) error { return rrdpxml.EncodeNotification(b, n) })
}

func TestTranscodeNotification(t *testing.T) {
	dir := t.TempDir()
	writeRepo(t, dir, irpkitest.Spec{Seed: 5, Objects: 40}, false)
	out := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "transcode", filepath.Join(dir, "notification.xml"), filepath.Join(out, "notification.bin"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "delta 1 left out") {
		t.Errorf("the missing delta is not reported: %q", stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "notification.bin"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Deltas) != 1 || !strings.HasPrefix(n.Snapshot.URI, "https://rrdp.example.net/rrdp/"+n.SessionID+"/2/") {
		t.Fatalf("notification.bin %+v", n)
	}
	// Every file it names is beside it, with the hash it gives.
	for _, ref := range []struct {
		uri  string
		hash [32]byte
	}{{n.Snapshot.URI, n.Snapshot.Hash}, {n.Deltas[0].URI, n.Deltas[0].Hash}} {
		rel := strings.TrimPrefix(ref.uri, "https://rrdp.example.net/rrdp/")
		f, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(f) != ref.hash {
			t.Errorf("%s: hash differs from notification.bin", rel)
		}
	}
	// And back to XML: the files it names carry the same objects.
	back := filepath.Join(t.TempDir(), "xml")
	os.MkdirAll(back, 0o755)
	if code, _, stderr := runCLI(t, "transcode", filepath.Join(out, "notification.bin"), filepath.Join(back, "notification.xml")); code != 0 {
		t.Fatalf("bin -> xml: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "inspect", "--json", filepath.Join(back, "notification.xml"))
	if code != 0 {
		t.Fatalf("inspect: %s", stderr)
	}
	var got inspectOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "notification" || got.Format != "xml" || got.Serial != 2 || len(got.Deltas) != 1 {
		t.Errorf("inspect gave %+v", got)
	}
}

func TestTranscodeNotificationHashMismatch(t *testing.T) {
	dir := t.TempDir()
	writeRepo(t, dir, irpkitest.Spec{Seed: 6, Objects: 10}, true)
	out := filepath.Join(t.TempDir(), "notification.bin")
	code, _, stderr := runCLI(t, "transcode", filepath.Join(dir, "notification.xml"), out)
	if code != 1 || !strings.Contains(stderr, "the notification says") {
		t.Fatalf("exit %d, stderr %q; want 1 and a hash mismatch", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("OUT was written for a rejected input")
	}
}

func TestTranscodeFiles(t *testing.T) {
	dir := t.TempDir()
	var x bytes.Buffer
	if err := irpkitest.WriteSnapshot(&x, irpkitest.Spec{Seed: 8, Objects: 30, Wrap: 64}); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "snapshot.xml")
	os.WriteFile(in, x.Bytes(), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string // format of the output
	}{
		{"default xml to bin", []string{in, filepath.Join(dir, "a.bin")}, "bin"},
		{"default bin to xml", []string{filepath.Join(dir, "a.bin"), filepath.Join(dir, "b.xml")}, "xml"},
		{"xml to canonical xml", []string{"--to", "xml", in, filepath.Join(dir, "c.xml")}, "xml"},
		{"bin to bin", []string{"--to", "bin", filepath.Join(dir, "a.bin"), filepath.Join(dir, "d.bin")}, "bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runCLI(t, append([]string{"transcode"}, tc.args...)...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			code, stdout, stderr := runCLI(t, "inspect", "--json", tc.args[len(tc.args)-1])
			if code != 0 {
				t.Fatal(stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"kind", "format", "session_id", "serial", "groups", "objects", "bytes"} {
				if _, ok := got[k]; !ok {
					t.Errorf("inspect --json has no key %q", k)
				}
			}
			if got["format"] != tc.want || got["kind"] != "snapshot" || got["objects"] != 30.0 {
				t.Errorf("got %v, want a %s snapshot of 30 objects", got, tc.want)
			}
		})
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.bin"))
	d, _ := os.ReadFile(filepath.Join(dir, "d.bin"))
	if !bytes.Equal(a, d) {
		t.Error("bin -> bin is not the identity on our own .bin")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "b.xml"))
	c, _ := os.ReadFile(filepath.Join(dir, "c.xml"))
	if !bytes.Equal(b, c) {
		t.Error("xml -> canonical xml differs from xml -> bin -> xml")
	}
}

func TestTranscodeRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE snapshot [<!ENTITY a "b">]><snapshot/>`, "DOCTYPE"},
		{"not rrdp", "hello", "neither"},
		{"bad base64", `<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + irpkitest.Session(1) + `" serial="1"><publish uri="rsync://a/b.roa">!!!!</publish></snapshot>`, "base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.name+".xml")
			out := filepath.Join(dir, tc.name+".bin")
			os.WriteFile(in, []byte(tc.content), 0o644)
			code, _, stderr := runCLI(t, "transcode", in, out)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("OUT exists after a rejected input")
			}
		})
	}
}

func TestRealKrillNotification(t *testing.T) {
	good := realdata.Path(t, "krill-sync", "test-resources", "validation", "good", "rrdp", "notification.xml")
	out := filepath.Join(t.TempDir(), "notification.bin")
	code, _, stderr := runCLI(t, "transcode", good, out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, stdout, _ := runCLI(t, "inspect", "--json", out)
	var got inspectOutput
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("inspect: %d %s", code, stdout)
	}
	if got.Serial != 3 || got.SessionID != "cd0c701d-ff09-4e95-8f2a-fa24de875fb5" || len(got.Deltas) != 1 ||
		!strings.HasPrefix(got.Snapshot.URI, "https://localhost:3000/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/") {
		t.Errorf("notification.bin: %+v", got)
	}
}

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "s", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "s", "1", "a b.xml"), []byte("x"), 0o644)
	path, base, err := locate(dir, "https://h.example/rrdp/s/1/a%20b.xml")
	if err != nil || path != filepath.Join(dir, "s", "1", "a b.xml") || base != "https://h.example/rrdp/" {
		t.Errorf("got %q %q %v", path, base, err)
	}
	for _, uri := range []string{
		"https://h.example/x/..%2f..%2fetc/passwd",
		"https://h.example/x/%2e%2e/%2e%2e/etc/passwd",
		"https://h.example/x/../../etc/passwd",
		"https://h.example/x/a%5c..%5cb",
	} {
		if p, _, err := locate(dir, uri); err == nil {
			t.Errorf("locate(%s) = %s, want an error", uri, p)
		}
	}
}

func TestTranscodeNotificationLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	writeRepo(t, dir, irpkitest.Spec{Seed: 7, Objects: 10}, false)
	// Corrupt the delta after the notification named it: the snapshot
	// converts, then the delta fails its hash.
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "2", "rnd2", "delta.xml"))
	if len(matches) != 1 {
		t.Fatalf("delta not found: %v", matches)
	}
	b, _ := os.ReadFile(matches[0])
	os.WriteFile(matches[0], bytes.Replace(b, []byte("<publish"), []byte("<publish "), 1), 0o644)
	out := t.TempDir()
	code, _, stderr := runCLI(t, "transcode", filepath.Join(dir, "notification.xml"), filepath.Join(out, "notification.bin"))
	if code != 1 || !strings.Contains(stderr, "the notification says") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var files []string
	filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("left behind: %v", files)
	}
}
