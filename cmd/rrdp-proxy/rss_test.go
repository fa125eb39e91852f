package main

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
)

var keepDir = flag.String("keep", "", "TestPeakRSS writes its files into this directory and leaves them there")

// TestPeakRSS transcodes a 250 MB snapshot with the real binary and checks
// the memory bound: peak RSS below the size of the output plus
// 64 MB. Memory, not time, is asserted.
func TestPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 250 MB file")
	}
	dir := *keepDir
	if dir == "" {
		dir = t.TempDir()
	}
	bin := filepath.Join(t.TempDir(), "rrdp-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := filepath.Join(dir, "snapshot.xml")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	// 75,000 objects of 1-4 KiB: about 250 MB of XML.
	if err := irpkitest.WriteSnapshot(bw, irpkitest.Spec{Seed: 250, Objects: 75000, Dirs: 5000, Wrap: 0}); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(dir, "snapshot.bin")
	cmd := exec.Command(bin, "transcode", in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("transcode: %v\n%s", err, b)
	}
	ist, _ := os.Stat(in)
	ost, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024 // Linux reports KiB
	limit := ost.Size() + 64<<20
	t.Logf("input %d MB, output %d MB, peak RSS %d MB, limit %d MB", ist.Size()>>20, ost.Size()>>20, rss>>20, limit>>20)
	if rss >= limit {
		t.Errorf("peak RSS %d bytes, want below output %d + 64 MiB", rss, ost.Size())
	}
}
