package irpki_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestReaderOffsets checks that Group.Offset and Entry.Offset locate Raw
// and Content in the input, for a snapshot and a delta.
func TestReaderOffsets(t *testing.T) {
	spec := irpkitest.Spec{Seed: 3, Objects: 300, Dirs: 7}
	var snap, delta bytes.Buffer
	if err := irpkitest.WriteSnapshot(&snap, spec); err != nil {
		t.Fatal(err)
	}
	if err := irpkitest.WriteDelta(&delta, spec, 2, 5, 9); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		xml  []byte
		kind rrdpxml.Kind
	}{{"snapshot", snap.Bytes(), rrdpxml.KindSnapshot}, {"delta", delta.Bytes(), rrdpxml.KindDelta}} {
		t.Run(c.name, func(t *testing.T) {
			var bin bytes.Buffer
			if _, err := irpki.XMLToBin(&bin, bytes.NewReader(c.xml), irpki.Options{}); err != nil {
				t.Fatal(err)
			}
			b := bin.Bytes()
			// A reader that hands out a few bytes at a time, so that the
			// offsets do not follow from the buffering.
			rd := irpki.NewReader(io.LimitReader(&trickle{b: b}, int64(len(b))), c.kind, rrdpxml.Limits{})
			entries := 0
			for {
				g, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if end := g.Offset + int64(len(g.Raw)); g.Offset < 0 || end > int64(len(b)) || !bytes.Equal(b[g.Offset:end], g.Raw) {
					t.Fatalf("group %s: Offset %d does not locate Raw (%d bytes)", g.Repo, g.Offset, len(g.Raw))
				}
				for _, e := range g.Entries {
					end := e.Offset + int64(len(e.Content))
					if e.Offset < g.Offset || end > g.Offset+int64(len(g.Raw)) || !bytes.Equal(b[e.Offset:end], e.Content) {
						t.Fatalf("%s%s: Offset %d does not locate Content (%d bytes)", g.Repo, e.Name, e.Offset, len(e.Content))
					}
					entries++
				}
			}
			if entries == 0 {
				t.Fatal("no entries read")
			}
		})
	}
}

// trickle reads at most 7 bytes at a time from b.
type trickle struct{ b []byte }

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.b)
	r.b = r.b[n:]
	return n, nil
}
