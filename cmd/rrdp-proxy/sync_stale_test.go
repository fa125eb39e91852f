package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyncCompactStale follows the two compact publications of a split
// tree over loopback HTTPS while the second stops moving: its server keeps
// answering with the notification of serial 1 while the first advances,
// then it goes down. Without --max-stale the frozen publication passes
// unnoticed (exit 0); with it the run exits 3 naming that publication
// alone, still writing the VRPs; a server that is down exits 1 before the
// bound and 3 after it.
func TestSyncCompactStale(t *testing.T) {
	s := newSplitCompact(t)
	start := time.Now().UTC().Truncate(time.Second)
	s.syncTrees()
	s.publishBoth()
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	// The generator issues manifests an hour before its clock: at start
	// the newest iMFT of either publication is about an hour old.
	run := func(at time.Duration, extra ...string) (int, string, string, string) {
		t.Helper()
		args := append([]string{s.urls[0], s.urls[1], "--time", start.Add(at).Format(time.RFC3339)}, extra...)
		return s.client(vrps, args...)
	}
	staleLine := func(i int) string { return s.urls[i] + ": stale: serial " }

	code, stdout, stderr, _ := run(10*time.Minute, "--max-stale", "2h")
	if code != 0 || strings.Contains(stderr, "stale") {
		t.Fatalf("serial 1, both current: exit %d, want 0: %s%s", code, stdout, stderr)
	}
	code, _, stderr, _ = run(10*time.Minute, "--max-stale", "30m")
	if code != exitStale || !strings.Contains(stderr, staleLine(0)+"1, its newest iMFT issued ") || !strings.Contains(stderr, staleLine(1)+"1, its newest iMFT issued ") {
		t.Errorf("serial 1 under a bound below the iMFTs' age: exit %d, want %d naming both publications: %s", code, exitStale, stderr)
	}

	// Three hours later the first repository has a new serial; the second
	// publication is not made again: its server serves serial 1 as it was.
	later := start.Add(3 * time.Hour).Format(time.RFC3339)
	s.gen("--advance", "1", "--now", later)
	s.syncTrees()
	s.publish(0, s.pubs[0], filepath.Join(s.keys, "key.pem"), "--time", later)

	code, stdout, stderr, csv := run(3*time.Hour + 30*time.Minute)
	if code != 0 {
		t.Fatalf("the second frozen, no --max-stale: exit %d, want 0: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, s.urls[0]+": session ") || !strings.Contains(stdout, "serial 2 (1 deltas)") || !strings.Contains(stdout, "serial 1 (unchanged)") {
		t.Errorf("the second frozen: want the first advanced by a delta and the second unchanged:\n%s", stdout)
	}
	if csv == "" || strings.Count(csv, "\n") < 2 {
		t.Fatalf("the second frozen: no VRPs written:\n%s", csv)
	}
	if err := os.Remove(vrps); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr, staleCSV := run(3*time.Hour+30*time.Minute, "--max-stale", "2h")
	if code != exitStale {
		t.Errorf("the second frozen, --max-stale 2h: exit %d, want %d: %s%s", code, exitStale, stdout, stderr)
	}
	if !strings.Contains(stderr, staleLine(1)+"1, its newest iMFT issued ") || !strings.Contains(stderr, "(--max-stale 2h0m0s)") {
		t.Errorf("the second frozen, --max-stale 2h: the error does not name the second publication as stale:\n%s", stderr)
	}
	if strings.Contains(stderr, staleLine(0)) {
		t.Errorf("the second frozen, --max-stale 2h: the first publication, advanced, is called stale:\n%s", stderr)
	}
	if staleCSV != csv {
		t.Errorf("the second frozen, --max-stale 2h: the VRPs written differ from those without the bound:\ngot:\n%s\nwant:\n%s", staleCSV, csv)
	}

	// The second server goes down: a failure of this run (exit 1) until
	// the bound, then stale (exit 3), both said.
	if err := s.pubOrig[1].Close(); err != nil {
		t.Fatal(err)
	}
	code, _, stderr, _ = run(3*time.Hour + 30*time.Minute)
	if code != 1 || !strings.Contains(stderr, s.urls[1]+": ") {
		t.Errorf("the second down, no --max-stale: exit %d, want 1 naming it: %s", code, stderr)
	}
	code, _, stderr, _ = run(3*time.Hour+30*time.Minute, "--max-stale", "6h")
	if code != 1 || strings.Contains(stderr, "stale:") {
		t.Errorf("the second down, within --max-stale 6h: exit %d, want 1 and no stale publication: %s", code, stderr)
	}
	code, _, stderr, _ = run(3*time.Hour+30*time.Minute, "--max-stale", "2h")
	if code != exitStale || !strings.Contains(stderr, staleLine(1)) || strings.Count(stderr, s.urls[1]+": ") < 2 {
		t.Errorf("the second down, past --max-stale 2h: exit %d, want %d naming it stale and its failure: %s", code, exitStale, stderr)
	}

	if code, _, stderr, _ = run(0, "--max-stale", "-1h"); code != 2 {
		t.Errorf("--max-stale -1h: exit %d, want 2: %s", code, stderr)
	}
}
