package rrdpxml

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

// realRejects lists the real files the decoder must reject, and why;
// every other *.xml under realdata must decode.
var realRejects = map[string]error{
	// rpki-client's regression inputs: hostile DOCTYPEs and a wrong namespace.
	"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/xxe.xml":                ErrDoctype,
	"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/billion_lol.xml":        ErrDoctype,
	"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/notification_xmlns.xml": ErrNamespace,
	// rpki-rs: a billion-laughs notification.
	"rpki-rs/test-data/rrdp/lolz-notification.xml": ErrDoctype,
}

// realFile is one decoded real file.
type realFile struct {
	path   string // relative to realdata
	header Header
	notif  *Notification
	elems  []elem
	sum    [32]byte
}

// decodeReal decodes every *.xml under realdata, checking the rejects.
func decodeReal(t *testing.T) (string, []realFile) {
	t.Helper()
	dir := realdata.Dir(t)
	var files []realFile
	seen := make(map[string]bool)
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".xml") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		f, err := decodeFile(p)
		f.path = rel
		want, reject := realRejects[rel]
		switch {
		case reject && !errors.Is(err, want):
			t.Errorf("%s: got error %v, want %v", rel, err, want)
		case !reject && err != nil:
			t.Errorf("%s: %v", rel, err)
		case !reject:
			files = append(files, f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel := range realRejects {
		if !seen[rel] {
			t.Errorf("%s: missing from realdata", rel)
		}
	}
	return dir, files
}

func decodeFile(path string) (realFile, error) {
	in, err := os.ReadFile(path)
	if err != nil {
		return realFile{}, err
	}
	d := NewDecoder(bytes.NewReader(in), Limits{})
	defer d.Close()
	h, err := d.Header()
	if err != nil {
		return realFile{}, err
	}
	f := realFile{header: h}
	if h.Kind == KindNotification {
		if f.notif, err = d.Notification(); err != nil {
			return f, err
		}
	} else {
		for {
			e, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return f, err
			}
			f.elems = append(f.elems, elem{e.Withdraw, e.URI, e.Hash, e.HasHash, bytes.Clone(e.Content)})
		}
	}
	f.sum = d.Sum()
	if want := sha256.Sum256(in); f.sum != want {
		return f, fmt.Errorf("got sum %x, want %x", f.sum, want)
	}
	if d.Size() != int64(len(in)) {
		return f, fmt.Errorf("got size %d, want %d", d.Size(), len(in))
	}
	return f, nil
}

func TestRealData(t *testing.T) {
	_, files := decodeReal(t)
	counts := map[string]int{
		"rpki-rs/test-data/rrdp/ripe-notification.xml":                                                                        91,
		"rpki-rs/test-data/rrdp/ripe-notification-unsorted.xml":                                                               91,
		"rpki-rs/test-data/rrdp/ripe-notification-with-gaps.xml":                                                              90,
		"rpki-client-openbsd/src/regress/usr.sbin/rpki-client/rrdp/notification.xml":                                          101,
		"rpki-rs/test-data/rrdp/ripe-snapshot.xml":                                                                            277,
		"rpki-rs/test-data/rrdp/ripe-delta.xml":                                                                               66,
		"krill-sync/test-resources/validation/good/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/snapshot.xml": 135,
		"krill-sync/test-resources/validation/good/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/delta.xml":    122,
		"krill-sync/test-resources/rrdp-empty-snapshot/bf64ea72-ebb8-462f-99fb-8cd06f418565/1/snapshot.xml":                   0,
	}
	for _, f := range files {
		want, ok := counts[f.path]
		if !ok {
			continue
		}
		delete(counts, f.path)
		got := len(f.elems)
		if f.notif != nil {
			got = len(f.notif.Deltas)
		}
		if got != want {
			t.Errorf("%s: got %d elements, want %d", f.path, got, want)
		}
	}
	for p := range counts {
		t.Errorf("%s: not decoded", p)
	}
}

// TestRealDataHashes checks, for the krill-sync sets, that the SHA-256
// computed while streaming each snapshot and delta equals the hash its
// notification gives, and that serials and sessions agree.
func TestRealDataHashes(t *testing.T) {
	dir, files := decodeReal(t)
	byPath := make(map[string]realFile)
	for _, f := range files {
		byPath[f.path] = f
	}
	checked := 0
	for _, f := range files {
		if f.notif == nil || !strings.HasPrefix(f.path, "krill-sync/") {
			continue
		}
		n := f.notif
		base := filepath.ToSlash(filepath.Dir(f.path))
		check := func(uri string, hash [32]byte, kind Kind, serial uint64) {
			_, rest, ok := strings.Cut(uri, "/rrdp/")
			if !ok {
				t.Errorf("%s: uri %s has no /rrdp/ component", f.path, uri)
				return
			}
			p := base + "/" + rest
			g, ok := byPath[p]
			if !ok {
				if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s: present but not decoded", p)
				}
				return
			}
			checked++
			if g.sum != hash {
				t.Errorf("%s: got sha256 %x, notification %s says %x", p, g.sum, f.path, hash)
			}
			want := Header{Kind: kind, SessionID: n.SessionID, Serial: serial}
			if g.header != want {
				t.Errorf("%s: got header %+v, want %+v", p, g.header, want)
			}
		}
		check(n.Snapshot.URI, n.Snapshot.Hash, KindSnapshot, n.Serial)
		for _, dr := range n.Deltas {
			check(dr.URI, dr.Hash, KindDelta, dr.Serial)
		}
	}
	// validation/good: snapshot and 1 delta; rrdp-rev2658: snapshot and 5
	// deltas; session reset: snapshot and 2 deltas; empty: snapshot.
	if checked != 12 {
		t.Errorf("checked %d files against their notification, want 12", checked)
	}
}

// TestRealDataRoundTrip decodes each real snapshot and delta, encodes it
// canonically and decodes that again: same elements, same object bytes.
func TestRealDataRoundTrip(t *testing.T) {
	_, files := decodeReal(t)
	for _, f := range files {
		if f.notif != nil {
			var b bytes.Buffer
			if err := EncodeNotification(&b, f.notif); err != nil {
				t.Errorf("%s: encode: %v", f.path, err)
				continue
			}
			n, _, err := DecodeNotification(&b, Limits{})
			if err != nil {
				t.Errorf("%s: decode the encoding: %v", f.path, err)
				continue
			}
			if !reflect.DeepEqual(n, f.notif) {
				t.Errorf("%s: got %+v after round trip, want %+v", f.path, n, f.notif)
			}
			continue
		}
		if err := roundTrip(f.header, f.elems); err != nil {
			t.Errorf("%s: %v", f.path, err)
		}
	}
}

// TestRealDataBER checks the RIPE snapshot's BER indefinite-length CMS
// objects: decoded as they are, and re-encoded byte for byte.
func TestRealDataBER(t *testing.T) {
	path := realdata.Path(t, "rpki-rs", "test-data", "rrdp", "ripe-snapshot.xml")
	f, err := decodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ber := 0
	for _, e := range f.elems {
		if len(e.Content) > 2 && e.Content[0] == 0x30 && e.Content[1] == 0x80 {
			ber++
		}
	}
	if ber != 148 {
		t.Errorf("got %d BER indefinite-length objects, want 148", ber)
	}
	out, err := encodeElems(f.header, f.elems)
	if err != nil {
		t.Fatal(err)
	}
	_, els, _, err := decodeElems(bytes.NewReader(out), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range els {
		if !bytes.Equal(els[i].Content, f.elems[i].Content) {
			t.Errorf("%s: object bytes differ after round trip", els[i].URI)
		}
	}
}
