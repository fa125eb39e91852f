package repotest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// rrdpFile writes one snapshot or delta file through a temporary name,
// hashing it on the way.
type rrdpFile struct {
	path string // final path
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	n    int64
	w    *rrdpxml.Writer
}

func createRRDP(dir, rel string, h rrdpxml.Header) (*rrdpFile, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	f, err := os.Create(p + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	r := &rrdpFile{path: p, f: f, h: sha256.New()}
	r.bw = bufio.NewWriterSize(io.MultiWriter(f, r.h, counter{&r.n}), 1<<20)
	if r.w, err = rrdpxml.NewWriter(r.bw, h); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	return r, nil
}

type counter struct{ n *int64 }

func (c counter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

// close finishes the file and renames it into place (or removes it after
// an error) and returns its reference.
func (r *rrdpFile) close(serial uint64, rel string, failed error) (fileRef, error) {
	err := failed
	if err == nil {
		err = r.w.Close()
	}
	if err == nil {
		err = r.bw.Flush()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(r.f.Name(), r.path)
	}
	if err != nil {
		os.Remove(r.f.Name())
		return fileRef{}, fmt.Errorf("write %s: %w", rel, err)
	}
	return fileRef{Serial: serial, Path: rel, Hash: r.h.Sum(nil), Size: r.n}, nil
}

// element is one publish or withdraw of a delta.
type element struct {
	uri      string
	withdraw bool
	old      *[sha256.Size]byte // hash of the object replaced or withdrawn
	der      []byte
}

// writeDelta writes the delta of the current serial of sv in dir, sv's
// directory.
func (s *state) writeDelta(dir string, sv *server, elems []element) (fileRef, error) {
	rel := s.rrdpDir(sv, sv.Serial) + "delta.xml"
	f, err := createRRDP(dir, rel, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: sv.SessionID, Serial: sv.Serial})
	if err != nil {
		return fileRef{}, err
	}
	for _, e := range elems {
		if e.withdraw {
			err = f.w.Withdraw(e.uri, *e.old)
		} else {
			err = f.w.Publish(e.uri, e.old, e.der)
		}
		if err != nil {
			break
		}
	}
	return f.close(sv.Serial, rel, err)
}

// writeNotification writes the notification of sv in dir, sv's
// directory: the snapshot and the last deltas, newest first.
func (sv *server) writeNotification(dir string) error {
	snap := sv.Snapshots[len(sv.Snapshots)-1]
	n := &rrdpxml.Notification{
		SessionID: sv.SessionID, Serial: sv.Serial,
		Snapshot: rrdpxml.SnapshotRef{URI: sv.BaseURL + snap.Path, Hash: [32]byte(snap.Hash)},
	}
	for _, d := range slices.Backward(sv.Deltas) {
		n.Deltas = append(n.Deltas, rrdpxml.DeltaRef{Serial: d.Serial, URI: sv.BaseURL + d.Path, Hash: [32]byte(d.Hash)})
	}
	var buf bytes.Buffer
	if err := rrdpxml.EncodeNotification(&buf, n); err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if err := publishFile(filepath.Join(dir, notificationFile), buf.Bytes()); err != nil {
		return fmt.Errorf("write notification: %w", err)
	}
	return nil
}

// openSnapshot opens the current snapshot of sv, in dir, for decoding.
func (sv *server) openSnapshot(dir string) (*os.File, *rrdpxml.Decoder, error) {
	snap := sv.Snapshots[len(sv.Snapshots)-1]
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(snap.Path)))
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot: %w", err)
	}
	return f, rrdpxml.NewDecoder(f, rrdpxml.Limits{}), nil
}

// scanSnapshot reads the current snapshot of sv, in dir, and adds the
// hash of every object to index by URI, after checking that the file is
// the one the state names.
func (sv *server) scanSnapshot(dir string, index map[string][sha256.Size]byte) error {
	f, dec, err := sv.openSnapshot(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	defer dec.Close()
	if err := sv.checkHeader(dec); err != nil {
		return err
	}
	for {
		e, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read snapshot %s: %w", f.Name(), err)
		}
		index[e.URI] = sha256.Sum256(e.Content)
	}
	if sum := dec.Sum(); !bytes.Equal(sum[:], sv.Snapshots[len(sv.Snapshots)-1].Hash) {
		return fmt.Errorf("snapshot %s has hash %x, the state says %x: the directory was changed", f.Name(), sum, []byte(sv.Snapshots[len(sv.Snapshots)-1].Hash))
	}
	return nil
}

func (sv *server) checkHeader(dec *rrdpxml.Decoder) error {
	h, err := dec.Header()
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	snap := sv.Snapshots[len(sv.Snapshots)-1]
	if h.Kind != rrdpxml.KindSnapshot || h.Serial != snap.Serial {
		return fmt.Errorf("snapshot %s: %v of serial %d, want the snapshot of serial %d", snap.Path, h.Kind, h.Serial, snap.Serial)
	}
	return nil
}

// mergeSnapshot writes the snapshot of the current serial and session of
// sv, in dir: the last snapshot of sv.Snapshots (sorted by URI, as this
// package writes them) with the objects of overlay in sv replacing,
// adding or (nil) removing objects.
func (s *state) mergeSnapshot(dir string, sv *server, overlay map[string][]byte) (fileRef, int, error) {
	f, dec, err := sv.openSnapshot(dir)
	if err != nil {
		return fileRef{}, 0, err
	}
	defer f.Close()
	defer dec.Close()
	if err := sv.checkHeader(dec); err != nil {
		return fileRef{}, 0, err
	}
	keys := make([]string, 0, len(overlay))
	for k := range overlay {
		if s.serverOfURI(k) == sv {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)

	rel := s.rrdpDir(sv, sv.Serial) + "snapshot.xml"
	out, err := createRRDP(dir, rel, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: sv.SessionID, Serial: sv.Serial})
	if err != nil {
		return fileRef{}, 0, err
	}
	count := 0
	put := func(uri string, der []byte) error {
		if der == nil {
			return nil
		}
		count++
		return out.w.Publish(uri, nil, der)
	}
	prev := ""
	for err == nil {
		var e *rrdpxml.Element
		e, err = dec.Next()
		if errors.Is(err, io.EOF) {
			err = nil
			break
		}
		if err != nil {
			err = fmt.Errorf("read snapshot %s: %w", f.Name(), err)
			break
		}
		if e.URI <= prev {
			err = fmt.Errorf("snapshot %s: %s after %s: not sorted by URI", f.Name(), e.URI, prev)
			break
		}
		prev = e.URI
		for err == nil && len(keys) > 0 && keys[0] < e.URI {
			err = put(keys[0], overlay[keys[0]])
			keys = keys[1:]
		}
		if err != nil {
			break
		}
		if len(keys) > 0 && keys[0] == e.URI {
			err = put(keys[0], overlay[keys[0]])
			keys = keys[1:]
			continue
		}
		err = put(e.URI, e.Content)
	}
	for err == nil && len(keys) > 0 {
		err = put(keys[0], overlay[keys[0]])
		keys = keys[1:]
	}
	ref, err := out.close(sv.Serial, rel, err)
	return ref, count, err
}

// sortElements orders a delta's elements by URI.
func sortElements(elems []element) {
	slices.SortFunc(elems, func(a, b element) int { return strings.Compare(a.uri, b.uri) })
}
