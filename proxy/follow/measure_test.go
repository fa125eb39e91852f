package follow

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestMeasure measures, on a repository made by `rrdp-proxy gen` (the
// directory in RRDP_FOLLOW_MEASURE, copied first, never changed), the time
// from a sync's start to the new head published for the snapshot path and
// for the delta path (after `gen --advance 1` on the copy), the peak RSS of
// the process while following, and a baseline: fetching the same snapshot
// and decoding it with encoding/xml; each path regenerating and
// transparent (Config.Transparent), in the same run. It is a measurement,
// not a test: it asserts only that the syncs succeed. Run:
//
//	RRDP_FOLLOW_MEASURE=/work/data/large go test ./proxy/follow -run TestMeasure -v
//
// GEN names the gen binary (rrdp-proxy-main on PATH by default);
// RRDP_FOLLOW_MEASURE_ROUNDS=N measures N serials of the delta path (1),
// RRDP_FOLLOW_MEASURE_NOFRESH=1 leaves out the fresh followers at the end,
// RRDP_FOLLOW_MEASURE_STORE=current keeps in memory the blobs of each
// follower's current files (the served state, as a node's cache pins
// them; retained files dropped) instead of dropping every blob,
// RRDP_FOLLOW_MEASURE_CHANGES=K makes each serial replace the contents of
// K objects picked at random (changeObjects) instead of `gen --advance 1`
// (which reissues the manifests and CRLs of a few dozen CAs).
func TestMeasure(t *testing.T) {
	src := os.Getenv("RRDP_FOLLOW_MEASURE")
	if src == "" {
		t.Skip("RRDP_FOLLOW_MEASURE is not set")
	}
	gen := os.Getenv("GEN")
	if gen == "" {
		gen = "rrdp-proxy-main"
	}
	dir := filepath.Join(t.TempDir(), "repo")
	advance := func() {
		if out, err := exec.Command(gen, "gen", "--out", dir, "--advance", "1").CombinedOutput(); err != nil {
			t.Fatalf("gen --advance: %v\n%s", err, out)
		}
	}
	if v := os.Getenv("RRDP_FOLLOW_MEASURE_CHANGES"); v != "" {
		// Serials of v changed objects instead of gen's advance.
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 {
			t.Fatalf("RRDP_FOLLOW_MEASURE_CHANGES=%q: want a positive number", v)
		}
		rng := rand.New(rand.NewPCG(14, uint64(k)))
		advance = func() { changeObjects(t, dir, k, rng) }
	}
	if count, ok := strings.CutPrefix(src, "synthetic:"); ok {
		n, err := strconv.Atoi(count)
		if err != nil {
			t.Fatal(err)
		}
		advance = writeSynthetic(t, dir, n)
	} else if out, err := exec.Command("cp", "-a", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	o := newFaultOrigin(t, dir)
	// The repository names its files under the base URL it was made with;
	// the origin serves its notification rewritten to name itself (the
	// hashes of snapshots and deltas are not affected).
	nb, err := os.ReadFile(filepath.Join(dir, "rrdp", "notification.xml"))
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(nb), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	genBase := n.Snapshot.URI[:strings.Index(n.Snapshot.URI, "/rrdp/")+1]
	o.setFault(on(func(w http.ResponseWriter, r *http.Request) {
		b := o.file(r)
		w.Write(bytes.ReplaceAll(b, []byte(genBase), []byte(o.URL())))
	}, "notification"))
	c, err := upstream.New(upstream.Config{CAPEM: o.ca})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	url := o.URL() + "rrdp/notification.xml"
	snapURL := strings.Replace(n.Snapshot.URI, genBase, o.URL(), 1)

	// Each line: the wall time, the CPU time of the process (the
	// follower and the origin, both in this process, since the last
	// resetPeakRSS) and the peak RSS.
	report := func(what string, d time.Duration) {
		t.Logf("%-58s %8.3fs  cpu %7.3fs  peak RSS %4d MiB", what, d.Seconds(), (processCPU() - cpuMark).Seconds(), peakRSS(t)>>20)
	}

	// Baseline: fetch the snapshot, decode it with encoding/xml.
	resetPeakRSS(t)
	start := time.Now()
	objects, size := decodeStdlib(t, c, snapURL)
	report(fmt.Sprintf("baseline: fetch + encoding/xml (%d objects, %d MB)", objects, size>>20), time.Since(start))

	newStore := func() Store { return countStore{} }
	if os.Getenv("RRDP_FOLLOW_MEASURE_STORE") == "current" {
		newStore = func() Store { return &currentStore{blobs: map[[32]byte][]byte{}} }
	}
	newFollower := func(transparent bool) *Follower {
		f, err := New(Config{URL: url, Client: c, Store: newStore(), Transparent: transparent, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	sync := func(f *Follower) time.Duration {
		t.Helper()
		start := time.Now()
		changed, err := f.Sync(context.Background())
		if err != nil || !changed {
			t.Fatalf("sync: changed %v, %v", changed, err)
		}
		return time.Since(start)
	}

	resetPeakRSS(t)
	f := newFollower(false)
	d := sync(f)
	report(fmt.Sprintf("snapshot path: serial %d to head", f.Head().Serial), d)
	resetPeakRSS(t)
	ft := newFollower(true)
	d = sync(ft)
	report(fmt.Sprintf("transparent, snapshot path: serial %d to head", ft.Head().Serial), d)
	for _, fl := range ft.Head().Files {
		if fl.Kind == rrdpxml.KindSnapshot && fl.Gzip {
			t.Logf("  transparent: gzip copy of the %v snapshot: %d bytes (composite %v)", fl.Format, fl.Size, fl.Composite())
		}
	}

	runtimeGC()
	// Gzip copies of the snapshot alone, at a few levels.
	snap, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(snapURL, o.URL())))
	if err != nil {
		t.Fatal(err)
	}
	levels := []int{1, 5, 9}
	if os.Getenv("RRDP_FOLLOW_MEASURE_GZIP") == "" {
		levels = nil // RRDP_FOLLOW_MEASURE_GZIP=1 to measure them
	}
	for _, level := range levels {
		start := time.Now()
		g, err := gzipBlob(blob{File: File{Path: "snapshot.xml"}, b: snap}, level)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("gzip level %d of the XML snapshot: %d -> %d bytes in %.3fs", level, len(snap), len(g.b), time.Since(start).Seconds())
	}
	snap = nil

	// The origin moves one serial, RRDP_FOLLOW_MEASURE_ROUNDS times (1).
	// Both followers take each new serial, the regenerating one first and
	// the transparent one (deltas, then the origin's snapshot) second,
	// the order swapped at every round; RRDP_FOLLOW_MEASURE_SWAP=1 swaps
	// the first round's.
	rounds := 1
	if v := os.Getenv("RRDP_FOLLOW_MEASURE_ROUNDS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("RRDP_FOLLOW_MEASURE_ROUNDS=%q: want a positive number", v)
		}
		if strings.HasPrefix(src, "synthetic:") && rounds > 1 {
			t.Fatal("RRDP_FOLLOW_MEASURE_ROUNDS: a synthetic repository advances once")
		}
	}
	type run struct {
		name string
		f    *Follower
	}
	runs := []run{{"delta path", f}, {"transparent, delta path + the origin's snapshot", ft}}
	if os.Getenv("RRDP_FOLLOW_MEASURE_SWAP") != "" {
		runs[0], runs[1] = runs[1], runs[0]
	}
	for round := range rounds {
		start = time.Now()
		advance()
		t.Logf("the origin's advance took %.1fs", time.Since(start).Seconds())
		for _, r := range runs {
			before := r.f.Stats()
			resetPeakRSS(t)
			d = sync(r.f)
			report(fmt.Sprintf("%s: serial %d to head (%d deltas so far)", r.name, r.f.Head().Serial, r.f.Stats().Deltas), d)
			if s := r.f.Stats(); s.OriginSegmentsBuilt+s.OriginSegmentsReused > 0 || r.f == ft {
				t.Logf("  .bin chunks built %d, reused %d; the origin's XML segments stored %d, reused %d",
					s.FragmentsBuilt-before.FragmentsBuilt, s.FragmentsReused-before.FragmentsReused,
					s.OriginSegmentsBuilt-before.OriginSegmentsBuilt, s.OriginSegmentsReused-before.OriginSegmentsReused)
			}
			if s := r.f.Stats(); s.Snapshots != 1 || s.Deltas != uint64(round+1) || s.SnapshotMismatches != 0 {
				t.Errorf("%s: got %d snapshots, %d deltas, %d snapshot mismatches; want 1, %d, 0", r.name, s.Snapshots, s.Deltas, s.SnapshotMismatches, round+1)
			}
		}
		runs[0], runs[1] = runs[1], runs[0]
	}
	f, ft = nil, nil
	if os.Getenv("RRDP_FOLLOW_MEASURE_NOFRESH") != "" {
		return
	}

	// A fresh follower at the new serial: the snapshot and the listed delta.
	resetPeakRSS(t)
	g := newFollower(false)
	d = sync(g)
	report(fmt.Sprintf("snapshot path + listed deltas: serial %d to head", g.Head().Serial), d)
	g = nil
	resetPeakRSS(t)
	g = newFollower(true)
	d = sync(g)
	report(fmt.Sprintf("transparent, snapshot path + listed deltas: serial %d to head", g.Head().Serial), d)
}

// decodeStdlib fetches a snapshot and decodes it with encoding/xml,
// base64 included; it returns the objects and bytes.
func decodeStdlib(t *testing.T, c *upstream.Client, uri string) (int, int) {
	t.Helper()
	resp, err := c.Fetch(context.Background(), upstream.Request{URL: uri, Kind: rrdpxml.KindSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	b, err := resp.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	type publish struct {
		URI  string `xml:"uri,attr"`
		Body string `xml:",chardata"`
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return n, len(b)
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "publish" {
			var p publish
			if err := d.DecodeElement(&p, &se); err != nil {
				t.Fatal(err)
			}
			if _, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(p.Body), "")); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
}

// peakRSS returns the peak resident set size of the process (VmHWM).
func peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux 4.0 and later),
// after a garbage collection, and sets cpuMark.
func resetPeakRSS(t *testing.T) {
	runtimeGC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	cpuMark = processCPU()
}

// cpuMark is the process's CPU time at the last resetPeakRSS.
var cpuMark time.Duration

func runtimeGC() { runtime.GC(); debug.FreeOSMemory() }

// countStore is a Store that keeps nothing, so that the peak RSS measured
// is the follower's own (a real store pins the current files in memory
// or writes them to disk).
type countStore struct{}

func (countStore) PutBlob(context.Context, [32]byte, []byte) error { return nil }
func (countStore) PutHead(context.Context, string, *Head) error    { return nil }

// currentStore is a Store that keeps, like a node's cache, the blobs of
// the current files of the last head (those without Expires, with their
// parts) and drops the others, retained files included: the peak RSS
// measured is the follower's and its served state's.
type currentStore struct {
	mu    sync.Mutex
	blobs map[[32]byte][]byte
}

func (s *currentStore) PutBlob(_ context.Context, sum [32]byte, b []byte) error {
	s.mu.Lock()
	s.blobs[sum] = b
	s.mu.Unlock()
	return nil
}

func (s *currentStore) PutHead(ctx context.Context, _ string, h *Head) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	get := func(_ context.Context, sum [32]byte) ([]byte, error) {
		if b, ok := s.blobs[sum]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("blob %x: %w", sum[:8], os.ErrNotExist)
	}
	keep := map[[32]byte][]byte{}
	for i := range h.Files {
		fl := &h.Files[i]
		if !fl.Expires.IsZero() {
			continue
		}
		parts, err := cache.FileParts(ctx, fl, get)
		if err != nil {
			return err
		}
		if fl.Composite() {
			keep[fl.Index] = s.blobs[fl.Index]
		}
		for _, p := range parts {
			if p.Data == nil {
				keep[p.Sum] = s.blobs[p.Sum]
			}
		}
	}
	s.blobs = keep
	return nil
}

// writeSynthetic writes into dir a synthetic repository of n objects of
// 800-2000 random bytes (irpkitest; random content compresses less than
// RPKI objects do): serial 1 and its notification. It returns the advance
// to serial 2: a delta replacing 1,000 objects and adding 100, the new
// snapshot and the notification listing the delta.
func writeSynthetic(t *testing.T, dir string, n int) func() {
	t.Helper()
	const base = "https://synthetic.invalid/"
	spec := irpkitest.Spec{Seed: 42, Objects: n, MinSize: 800, MaxSize: 2000}
	session := irpkitest.Session(spec.Seed)
	write := func(rel string, fill func(w io.Writer) error) rrdpxml.SnapshotRef {
		p := filepath.Join(dir, "rrdp", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		bw := bufio.NewWriterSize(io.MultiWriter(fh, h), 1<<20)
		if err := fill(bw); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
		return rrdpxml.SnapshotRef{URI: base + "rrdp/" + rel, Hash: [32]byte(h.Sum(nil))}
	}
	notify := func(serial uint64, snap rrdpxml.SnapshotRef, deltas []rrdpxml.DeltaRef) {
		write("notification.xml", func(w io.Writer) error {
			return rrdpxml.EncodeNotification(w, &rrdpxml.Notification{SessionID: session, Serial: serial, Snapshot: snap, Deltas: deltas})
		})
	}
	snap1 := write(session+"/1/snapshot.xml", func(w io.Writer) error { return irpkitest.WriteSnapshot(w, spec) })
	notify(1, snap1, nil)

	// Serial 2, prepared now and published by the advance.
	objs := irpkitest.Objects(spec)
	r := rand.New(rand.NewPCG(7, 7))
	content := func() []byte {
		c := make([]byte, 800+r.IntN(1200))
		for i := range c {
			c[i] = byte(r.Uint32())
		}
		return c
	}
	delta := write(session+"/2/delta.xml", func(w io.Writer) error {
		dw, err := rrdpxml.NewWriter(w, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: session, Serial: 2})
		if err != nil {
			return err
		}
		for _, k := range r.Perm(len(objs))[:min(1000, len(objs))] {
			h := sha256.Sum256(objs[k].Content)
			objs[k].Content = content()
			if err := dw.Publish(objs[k].URI, &h, objs[k].Content); err != nil {
				return err
			}
		}
		for i := range 100 {
			o := irpkitest.Object{URI: fmt.Sprintf("rsync://rpki.example.net/repo/new/added%03d.roa", i), Content: content()}
			objs = append(objs, o)
			if err := dw.Publish(o.URI, nil, o.Content); err != nil {
				return err
			}
		}
		return dw.Close()
	})
	snap2 := write(session+"/2/snapshot.xml", func(w io.Writer) error {
		sw, err := rrdpxml.NewWriter(w, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: session, Serial: 2})
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := sw.Publish(o.URI, nil, o.Content); err != nil {
				return err
			}
		}
		return sw.Close()
	})
	return func() {
		notify(2, snap2, []rrdpxml.DeltaRef{{Serial: 2, URI: delta.URI, Hash: delta.Hash}})
	}
}

// changeObjects advances the gen repository in dir by one serial that
// replaces the contents of k objects at random: the new snapshot is the
// old one edited line by line (gen writes one publish element a line), so
// that every other byte stays as the origin wrote it, the delta carries the
// replaced hashes, and the notification lists the delta before the old
// ones. The files are named under the repository's own base URL, as gen
// names them.
func changeObjects(t *testing.T, dir string, k int, rng *rand.Rand) {
	t.Helper()
	np := filepath.Join(dir, "rrdp", "notification.xml")
	nb, err := os.ReadFile(np)
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(nb), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(n.Snapshot.URI, "/rrdp/")
	base, old := n.Snapshot.URI[:i+1], filepath.Join(dir, filepath.FromSlash(n.Snapshot.URI[i+1:]))
	in, err := os.Open(old)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	count := 0
	br := bufio.NewReaderSize(in, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("<publish ")) {
			count++
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			t.Fatal(err)
		}
	}
	picked := map[int]bool{}
	for len(picked) < min(k, count) {
		picked[rng.IntN(count)] = true
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	br.Reset(in)
	serial := n.Serial + 1
	rel := fmt.Sprintf("rrdp/%s/%d/measure/", n.SessionID, serial)
	if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(rel)), 0o755); err != nil {
		t.Fatal(err)
	}
	create := func(name string) (*os.File, *bufio.Writer, hash.Hash) {
		f, err := os.Create(filepath.Join(dir, filepath.FromSlash(rel+name)))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		return f, bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20), h
	}
	closeFile := func(f *os.File, w *bufio.Writer, h hash.Hash) [32]byte {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return [32]byte(h.Sum(nil))
	}
	sf, sw, sh := create("snapshot.xml")
	df, dw, dh := create("delta.xml")
	delta, err := rrdpxml.NewWriter(dw, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: n.SessionID, Serial: serial})
	if err != nil {
		t.Fatal(err)
	}
	idx, first := 0, true
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			trimmed := bytes.TrimSpace(line)
			switch {
			case first && bytes.HasPrefix(trimmed, []byte("<snapshot ")):
				first = false
				line = bytes.Replace(line, []byte(fmt.Sprintf(`serial="%d"`, n.Serial)), []byte(fmt.Sprintf(`serial="%d"`, serial)), 1)
			case bytes.HasPrefix(trimmed, []byte("<publish ")):
				if picked[idx] {
					a := bytes.IndexByte(line, '>') + 1
					z := bytes.LastIndex(line, []byte("</publish>"))
					uri := string(line[bytes.Index(line, []byte(`uri="`))+5 : a-2])
					content, err := base64.StdEncoding.DecodeString(string(line[a:z]))
					if err != nil {
						t.Fatalf("%s: %v", uri, err)
					}
					h := sha256.Sum256(content)
					content = changed(content, serial)
					if err := delta.Publish(uri, &h, content); err != nil {
						t.Fatal(err)
					}
					line = slices.Concat(line[:a], []byte(base64.StdEncoding.EncodeToString(content)), line[z:])
				}
				idx++
			}
			sw.Write(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := delta.Close(); err != nil {
		t.Fatal(err)
	}
	snapSum, deltaSum := closeFile(sf, sw, sh), closeFile(df, dw, dh)
	n.Serial = serial
	n.Snapshot = rrdpxml.SnapshotRef{URI: base + rel + "snapshot.xml", Hash: snapSum}
	n.Deltas = append([]rrdpxml.DeltaRef{{Serial: serial, URI: base + rel + "delta.xml", Hash: deltaSum}}, n.Deltas...)
	var buf bytes.Buffer
	if err := rrdpxml.EncodeNotification(&buf, n); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(np, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// changed returns other bytes of the same length as c: the serial written
// over its last eight bytes.
func changed(c []byte, serial uint64) []byte {
	out := bytes.Clone(c)
	if len(out) < 8 {
		out = append(out, make([]byte, 8)...)
	}
	binary.BigEndian.PutUint64(out[len(out)-8:], serial)
	return out
}
