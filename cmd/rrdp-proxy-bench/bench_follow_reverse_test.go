package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestBenchFollowReverse runs the serials and the faults of bench follow
// --mode reverse on a synthetic repository: a real serve process in
// reverse mode in front of the benchmark's HTTPS origin (fetch_from). It
// checks the report: every serial was served, the child served the
// origin's bytes at each (the check of the benchmark itself), the faults
// left the old state served, a CPU profile was written for each serial.
func TestBenchFollowReverse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rrdp-proxy and runs it for about ten seconds")
	}
	bin := buildProxy(t)
	src := t.TempDir()
	writeRepo(t, filepath.Join(src, "rrdp"), irpkitest.Spec{Seed: 6, Objects: 200})
	prof := t.TempDir()
	o := benchFollowOptions{
		bins: []followBin{{"r", bin}}, repos: []string{src}, changes: []int{1, 300}, faults: true, mode: modeReverse,
		cpuProfile: prof, profileFor: time.Second,
		bombSize: 64 << 20, hugeSize: 32 << 20, maxRSS: 2 << 30, syncTimeout: time.Minute, seed: 1, command: "test",
		pause: 100 * time.Millisecond,
	}
	var stdout, stderr bytes.Buffer
	if err := benchFollowRun(o, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	report := stdout.String()
	if !strings.Contains(report, "reverse (transparent) mode") {
		t.Errorf("the report does not say reverse mode:\n%s", report)
	}
	rows := reportRows(report)
	for _, c := range []struct{ row, want string }{
		{"first sync (snapshot), start to served", " s"},
		{"first sync: the origin's bytes served", "yes"},
		{"1 changed: to served", " s"},
		{"1 changed: after its poll", " s"},
		{"first sync: CPU of the child", " s"},
		{"1 changed: peak RSS / served bytes", ""},
		{"1 changed: the origin's bytes served", "yes"},
		{"300 changed: to served", " s"},
		{"300 changed: served bytes", " MiB"},
		{"300 changed: the origin's bytes served", "yes"},
	} {
		cells, ok := rows[c.row]
		// r, load
		if !ok || len(cells) != 2 || cells[0] == "n/a" || !strings.HasSuffix(cells[0], c.want) {
			t.Errorf("row %q: got %q, want a figure ending in %q in:\n%s", c.row, cells, c.want, report)
		}
	}
	for _, changes := range []int{1, 300} {
		p := filepath.Join(prof, fmt.Sprintf("01-%s-r-%d.pprof", filepath.Base(src), changes))
		if b, err := os.ReadFile(p); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("CPU profile %s: %v, %d bytes; want a gzip'd profile", p, err, len(b))
		}
	}
	n := 0
	for name, cells := range rows {
		if strings.HasSuffix(name, ": old state served") {
			n++
			if cells[0] != "yes" {
				t.Errorf("%s: got %q", name, cells)
			}
		}
	}
	if n != 2 {
		t.Errorf("got %d fault rows, want 2 (the bomb, the huge body):\n%s", n, report)
	}
}

// TestCheckOrigin checks that the benchmark's check of a reverse-mode
// child fails when the bytes differ: a notification other than the one
// served, a snapshot file at the origin that is not what was served.
func TestCheckOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rrdp-proxy and runs it")
	}
	bin := buildProxy(t)
	src := t.TempDir()
	writeRepo(t, filepath.Join(src, "rrdp"), irpkitest.Spec{Seed: 7, Objects: 50})
	tmp := t.TempDir()
	pki, err := rp.NewPKI(tmp, rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &followEnv{o: benchFollowOptions{mode: modeReverse, seed: 1}, tmp: tmp, pki: pki, progress: io.Discard}
	b := followBin{"r", bin}
	s, err := e.setup(b, src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.origin.Close()
	c, err := e.start(b, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	ctx := context.Background()
	if err := s.repo.advance(3); err != nil {
		t.Fatal(err)
	}
	s.origin.publish(s.repo.notification(), s.repo.serial)
	if _, err := c.waitSerial(ctx, s.repo.serial, time.Minute); err != nil {
		t.Fatal(err)
	}
	served := s.origin.current()
	if err := c.checkOrigin(ctx, served, s.repo.dir, s.repo.base); err != nil {
		t.Fatalf("the origin's own bytes: %v", err)
	}

	// The next serial's notification, not published: not what is served.
	if err := s.repo.advance(1); err != nil {
		t.Fatal(err)
	}
	if err := c.checkOrigin(ctx, s.repo.notification(), s.repo.dir, s.repo.base); err == nil || !strings.Contains(err.Error(), "notification.xml") {
		t.Errorf("another notification: got %v, want an error naming notification.xml", err)
	}

	// The served serial's snapshot at the origin, one byte longer.
	snap := filepath.Join(s.repo.dir, filepath.FromSlash(s.repo.written[len(s.repo.written)-2]))
	f, err := os.OpenFile(snap, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("\n"))
	f.Close()
	if err := c.checkOrigin(ctx, served, s.repo.dir, s.repo.base); err == nil || !strings.Contains(err.Error(), "snapshot.xml") {
		t.Errorf("a snapshot other than the origin's: got %v, want an error naming snapshot.xml", err)
	}
}
