package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// followRepo is the repository the origin of bench follow serves: the
// objects of a repository made by rrdp-proxy gen (read, never changed),
// and the serials the benchmark writes on top of it into its own
// directory. A serial replaces the content of n objects by other bytes
// (the follower checks hashes, not signatures), each publish carrying the
// hash of what it replaces; the snapshot of each serial is written whole,
// before the notification names it.
type followRepo struct {
	dir     string // the origin's directory (its rrdp/ is the repository)
	base    string // the origin's URL, https://localhost:PORT/
	session string
	serial  uint64
	objs    []followObject
	snap    rrdpxml.SnapshotRef
	deltas  []rrdpxml.DeltaRef // newest first, at most maxListedDeltas
	written []string           // snapshot files the benchmark wrote, oldest first
	rng     *rand.Rand
}

type followObject struct {
	uri     string
	content []byte
}

// maxListedDeltas caps the deltas the notification lists; keepSnapshots
// is how many of the benchmark's snapshot files stay on disk.
const (
	maxListedDeltas = 50
	keepSnapshots   = 3
)

// loadFollowRepo reads the repository made by rrdp-proxy gen in src (its
// rrdp/notification.xml and the snapshot it names) and prepares dir to
// serve it under base: the snapshot is linked, not copied.
func loadFollowRepo(src, dir, base string, seed uint64) (*followRepo, error) {
	nb, err := os.ReadFile(filepath.Join(src, "rrdp", "notification.xml"))
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(nb), rrdpxml.Limits{})
	if err != nil {
		return nil, fmt.Errorf("load repository %s: notification.xml: %w", src, err)
	}
	i := strings.Index(n.Snapshot.URI, "/rrdp/")
	if i < 0 {
		return nil, fmt.Errorf("load repository %s: snapshot URI %s has no /rrdp/", src, n.Snapshot.URI)
	}
	rel := n.Snapshot.URI[i+1:]
	snapPath := filepath.Join(src, filepath.FromSlash(rel))
	f, err := os.Open(snapPath)
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	defer f.Close()
	r := &followRepo{dir: dir, base: base, session: n.SessionID, serial: n.Serial,
		rng: rand.New(rand.NewPCG(seed, 14))}
	d := rrdpxml.NewDecoder(bufio.NewReaderSize(f, 1<<20), rrdpxml.Limits{})
	defer d.Close()
	for {
		e, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load repository %s: %w", snapPath, err)
		}
		r.objs = append(r.objs, followObject{uri: e.URI, content: bytes.Clone(e.Content)})
	}
	if d.Sum() != n.Snapshot.Hash {
		return nil, fmt.Errorf("load repository %s: snapshot hash %x, the notification says %x", snapPath, d.Sum(), n.Snapshot.Hash)
	}
	abs, err := filepath.Abs(snapPath)
	if err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	link := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	if err := os.Symlink(abs, link); err != nil {
		return nil, fmt.Errorf("load repository: %w", err)
	}
	r.snap = rrdpxml.SnapshotRef{URI: base + rel, Hash: n.Snapshot.Hash}
	return r, nil
}

// notification encodes the notification of the current serial.
func (r *followRepo) notification() []byte {
	var b bytes.Buffer
	n := &rrdpxml.Notification{SessionID: r.session, Serial: r.serial, Snapshot: r.snap, Deltas: r.deltas}
	if err := rrdpxml.EncodeNotification(&b, n); err != nil {
		panic(fmt.Sprintf("encode notification: %v", err)) // the repository's own values
	}
	return b.Bytes()
}

// advance writes the next serial, changing n objects (at most all): its
// delta and its snapshot. The notification naming them is the caller's
// to publish (notification).
func (r *followRepo) advance(n int) error {
	n = min(n, len(r.objs))
	serial := r.serial + 1
	dirRel := fmt.Sprintf("rrdp/%s/%d/bench", r.session, serial)
	picks := r.pick(n)
	delta, err := r.write(dirRel+"/delta.xml", func(w io.Writer) error {
		dw, err := rrdpxml.NewWriter(w, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: r.session, Serial: serial})
		if err != nil {
			return err
		}
		for _, k := range picks {
			o := &r.objs[k]
			old := sha256.Sum256(o.content)
			o.content = changed(o.content, serial)
			if err := dw.Publish(o.uri, &old, o.content); err != nil {
				return err
			}
		}
		return dw.Close()
	})
	if err != nil {
		return err
	}
	snap, err := r.write(dirRel+"/snapshot.xml", func(w io.Writer) error {
		sw, err := rrdpxml.NewWriter(w, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: r.session, Serial: serial})
		if err != nil {
			return err
		}
		for _, o := range r.objs {
			if err := sw.Publish(o.uri, nil, o.content); err != nil {
				return err
			}
		}
		return sw.Close()
	})
	if err != nil {
		return err
	}
	r.serial = serial
	r.snap = snap
	r.deltas = append([]rrdpxml.DeltaRef{{Serial: serial, URI: delta.URI, Hash: delta.Hash}}, r.deltas...)
	r.deltas = r.deltas[:min(len(r.deltas), maxListedDeltas)]
	r.written = append(r.written, dirRel+"/snapshot.xml")
	for len(r.written) > keepSnapshots {
		os.Remove(filepath.Join(r.dir, filepath.FromSlash(r.written[0])))
		r.written = r.written[1:]
	}
	return nil
}

// pick returns n distinct indexes of objects, in increasing order.
func (r *followRepo) pick(n int) []int {
	if n >= len(r.objs) {
		all := make([]int, len(r.objs))
		for i := range all {
			all[i] = i
		}
		return all
	}
	seen := make(map[int]bool, n)
	var out []int
	for len(out) < n {
		k := r.rng.IntN(len(r.objs))
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// changed returns other bytes of the same length as c: the serial written
// over its last eight bytes (a shorter object gets them appended).
func changed(c []byte, serial uint64) []byte {
	out := bytes.Clone(c)
	if len(out) < 8 {
		out = append(out, make([]byte, 8)...)
	}
	binary.BigEndian.PutUint64(out[len(out)-8:], serial)
	return out
}

// write writes the file rel of the repository's directory with fill and
// returns its reference under the origin's URL.
func (r *followRepo) write(rel string, fill func(io.Writer) error) (rrdpxml.SnapshotRef, error) {
	p := filepath.Join(r.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return rrdpxml.SnapshotRef{}, fmt.Errorf("write %s: %w", rel, err)
	}
	f, err := os.Create(p)
	if err != nil {
		return rrdpxml.SnapshotRef{}, fmt.Errorf("write %s: %w", rel, err)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rrdpxml.SnapshotRef{}, fmt.Errorf("write %s: %w", rel, err)
	}
	return rrdpxml.SnapshotRef{URI: r.base + rel, Hash: [32]byte(h.Sum(nil))}, nil
}

// timed runs f and returns how long it took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}
