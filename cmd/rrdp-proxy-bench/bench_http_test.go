package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestBenchHTTP runs the whole benchmark briefly on the small profile:
// real nginx, real wrk, the proxy in process. It checks the report, not
// the speeds: every compared row has positive rates and ratios.
func TestBenchHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk for about ten seconds")
	}
	rp.Require(t, "nginx", "wrk")
	out := filepath.Join(t.TempDir(), "docs", "http.md")
	raw := t.TempDir()
	code, stdout, stderr := runCLI(t, "http", "--profile", "small", "--key-cache", t.TempDir(),
		"--duration", "1s", "--connections", "4", "--snapshot-connections", "2", "--out", out, "--raw", raw)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != stdout {
		t.Errorf("--out holds %d bytes, stdout %d: want the same report", len(written), len(stdout))
	}
	if !strings.Contains(stdout, "worker_processes") || !strings.Contains(stdout, "wrk -t 2 -c 4 -d 1s") {
		t.Errorf("report lacks the nginx setup or the wrk command:\n%s", stdout)
	}
	rows := throughputRows(t, stdout)
	for _, name := range []string{"notification.xml", "notification.xml, gzip", "snapshot.xml", "snapshot.xml, gzip"} {
		cells, ok := rows[name]
		if !ok {
			t.Errorf("no throughput row %q in:\n%s", name, stdout)
			continue
		}
		// nginx req/s, proxy req/s, ratio, nginx MiB/s, proxy MiB/s, ratio
		for i, c := range cells {
			v, err := strconv.ParseFloat(strings.TrimSuffix(c, "×"), 64)
			if err != nil || v <= 0 {
				t.Errorf("row %q, column %d: got %q, want a positive number", name, i+2, c)
			}
		}
	}
	for _, name := range []string{"notification.bin (proxy only)", "snapshot.bin (proxy only)"} {
		if _, ok := rows[name]; !ok {
			t.Errorf("no throughput row %q", name)
		}
	}
	files, err := os.ReadDir(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 10 {
		t.Errorf("--raw holds %d wrk outputs, want 10", len(files))
	}
}

// throughputRows returns the cells after the first of each row of the
// report's throughput table, by the first cell.
func throughputRows(t *testing.T, md string) map[string][]string {
	t.Helper()
	_, table, ok := strings.Cut(md, "## Throughput\n")
	if !ok {
		t.Fatalf("no throughput table in:\n%s", md)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	rows := make(map[string][]string)
	for line := range strings.Lines(table) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "| file") || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}
