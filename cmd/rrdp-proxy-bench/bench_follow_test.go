package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestFollowRepoAdvance checks the serials bench follow writes: each
// delta's publishes replace the hash of the previous content, the
// snapshot is the previous one with the delta applied, the notification
// names both with their hashes, and old snapshot files are removed.
func TestFollowRepoAdvance(t *testing.T) {
	src := t.TempDir()
	writeRepo(t, filepath.Join(src, "rrdp"), irpkitest.Spec{Seed: 3, Objects: 40})
	dir := t.TempDir()
	const base = "https://localhost:1234/"
	r, err := loadFollowRepo(src, dir, base, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.objs) != 40 {
		t.Fatalf("got %d objects, want 40", len(r.objs))
	}
	objects := func(rel string) map[string][]byte {
		t.Helper()
		m := map[string][]byte{}
		eachElement(t, filepath.Join(dir, filepath.FromSlash(rel)), func(e *rrdpxml.Element) { m[e.URI] = bytes.Clone(e.Content) })
		return m
	}
	prev := objects(strings.TrimPrefix(r.snap.URI, base))
	for _, c := range []struct {
		name    string
		changes int
	}{{"one", 1}, {"some", 7}, {"all", 40}, {"more than all", 100}, {"again", 2}} {
		t.Run(c.name, func(t *testing.T) {
			if err := r.advance(c.changes); err != nil {
				t.Fatal(err)
			}
			n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(r.notification()), rrdpxml.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if n.Serial != r.serial || len(n.Deltas) == 0 || n.Deltas[0].Serial != r.serial {
				t.Fatalf("notification: serial %d, %d deltas; want serial %d and its delta first", n.Serial, len(n.Deltas), r.serial)
			}
			for _, ref := range []rrdpxml.SnapshotRef{n.Snapshot, {URI: n.Deltas[0].URI, Hash: n.Deltas[0].Hash}} {
				b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(ref.URI, base))))
				if err != nil {
					t.Fatal(err)
				}
				if sha256.Sum256(b) != ref.Hash {
					t.Errorf("%s: hash differs from the notification's", ref.URI)
				}
			}
			want := min(c.changes, len(prev))
			got := 0
			eachElement(t, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(n.Deltas[0].URI, base))), func(e *rrdpxml.Element) {
				got++
				old, ok := prev[e.URI]
				if !ok || !e.HasHash || e.Hash != sha256.Sum256(old) {
					t.Errorf("delta publishes %s without the hash of its previous content", e.URI)
				}
				if bytes.Equal(old, e.Content) {
					t.Errorf("delta publishes %s unchanged", e.URI)
				}
				prev[e.URI] = bytes.Clone(e.Content)
			})
			if got != want {
				t.Errorf("delta changes %d objects, want %d", got, want)
			}
			snap := objects(strings.TrimPrefix(n.Snapshot.URI, base))
			if len(snap) != len(prev) {
				t.Errorf("snapshot holds %d objects, want %d", len(snap), len(prev))
			}
			for uri, c := range prev {
				if !bytes.Equal(snap[uri], c) {
					t.Errorf("snapshot: %s is not the previous content with the delta applied", uri)
				}
			}
		})
	}
	if len(r.written) != keepSnapshots {
		t.Errorf("%d snapshot files kept, want %d", len(r.written), keepSnapshots)
	}
}

// eachElement calls f for every element of the RRDP file p.
func eachElement(t *testing.T, p string, f func(*rrdpxml.Element)) {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	d := rrdpxml.NewDecoder(bufio.NewReader(fh), rrdpxml.Limits{})
	defer d.Close()
	for {
		e, err := d.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		f(e)
	}
}

// TestGzipBomb checks that the bomb decodes to its size from a small
// body.
func TestGzipBomb(t *testing.T) {
	const size = 64 << 20
	b, err := gzipBomb("9df4b597-af9e-4dca-bdda-719cce2c4e28", 2, size)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, zr)
	if err != nil || n != size {
		t.Errorf("the bomb decodes to %d bytes (%v), want %d", n, err, size)
	}
	if len(b) > size/500 {
		t.Errorf("the bomb is %d bytes on the wire, want at most %d", len(b), size/500)
	}
}

// TestBenchFollow runs the whole benchmark briefly with two names for the
// rrdp-proxy of this tree on a synthetic repository: real serve processes,
// the origin in process. It checks the report, not the speeds: every
// serial was served by both, the faults left the old state served, the
// restart with the origin down became ready.
func TestBenchFollow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rrdp-proxy and runs it for about half a minute")
	}
	bin := buildProxy(t)
	src := t.TempDir()
	writeRepo(t, filepath.Join(src, "rrdp"), irpkitest.Spec{Seed: 5, Objects: 200})
	out := filepath.Join(t.TempDir(), "follow.md")
	o := benchFollowOptions{
		bins:  []followBin{{"a", bin}, {"b", bin}},
		repos: []string{src}, out: out, changes: []int{1, 300}, faults: true,
		bombSize: 64 << 20, hugeSize: 32 << 20, soak: 4 * time.Second, soakEvery: time.Second, soakRepo: src, soakChanges: 2,
		maxRSS: 2 << 30, syncTimeout: time.Minute, seed: 1, command: "test", pause: 100 * time.Millisecond,
	}
	var stdout, stderr bytes.Buffer
	if err := benchFollowRun(o, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	report := stdout.String()
	if written, err := os.ReadFile(out); err != nil || string(written) != report {
		t.Errorf("--out: %v, %d bytes; want the %d bytes printed", err, len(written), len(report))
	}
	rows := reportRows(report)
	for _, c := range []struct{ row, want string }{
		{"1 changed: to served", " s"},
		{"300 changed: to served", " s"},
		{"300 changed: peak RSS", " MiB"},
		{"300 changed: served bytes", " MiB"},
		{"restart, origin down: to /readyz 200", " s"},
		{"restart, origin down: to the last serial served", " s"},
	} {
		cells, ok := rows[c.row]
		// a, load, b, load, b/a
		if !ok || len(cells) != 5 {
			t.Errorf("row %q: got %q, want 5 cells in:\n%s", c.row, cells, report)
			continue
		}
		for _, v := range []string{cells[0], cells[2]} {
			if !strings.HasSuffix(v, c.want) {
				t.Errorf("row %q: got %q, want a figure in%s", c.row, v, c.want)
			}
		}
		if !strings.HasSuffix(cells[4], "×") {
			t.Errorf("row %q: ratio %q, want N×", c.row, cells[4])
		}
	}
	n := 0
	for name, cells := range rows {
		if strings.HasSuffix(name, ": old state served") {
			n++
			if cells[0] != "yes" || cells[2] != "yes" {
				t.Errorf("%s: got %q", name, cells)
			}
		}
	}
	if n != 2 {
		t.Errorf("got %d fault rows, want 2 (the bomb, the huge body):\n%s", n, report)
	}
}

// buildProxy builds the rrdp-proxy of this tree into a temporary
// directory and returns its path.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rrdp-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, "../rrdp-proxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// reportRows maps the first cell of every table row of a Markdown report
// to the row's other cells.
func reportRows(report string) map[string][]string {
	rows := map[string][]string{}
	for line := range strings.Lines(report) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}
