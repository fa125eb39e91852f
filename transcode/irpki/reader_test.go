package irpki_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// pinned marshals s after setting every group's pin, as our writer does.
func pinned(t *testing.T, s *irpkipb.Snapshot) []byte {
	t.Helper()
	det := proto.MarshalOptions{Deterministic: true}
	for _, ca := range s.Cas {
		ca.Pin = nil
		b, err := det.Marshal(ca)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		ca.Pin = sum[:]
	}
	b, err := det.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var rrdpxmlLimits = rrdpxml.Limits{}

func readAll(b []byte, kind rrdpxml.Kind, lim rrdpxml.Limits) error {
	rd := irpki.NewReader(bytes.NewReader(b), kind, lim)
	for {
		if _, err := rd.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

func TestReaderRejects(t *testing.T) {
	session := irpkitest.Session(1)
	good := func() *irpkipb.Snapshot {
		return &irpkipb.Snapshot{
			Serial: 5, Session: session, Version: 1, Kind: irpkipb.FileKind_FILE_KIND_SNAPSHOT,
			Cas: []*irpkipb.CA{
				{Repo: "rsync://example.net/repo/a/", Entries: []*irpkipb.SnapshotEntry{{Name: "x.roa", Content: []byte("one")}, {Name: "y.roa", Content: []byte("two")}}},
				{Repo: "rsync://example.net/repo/b/", Entries: []*irpkipb.SnapshotEntry{{Name: "z.mft", Content: []byte("three")}}},
			},
		}
	}
	valid := pinned(t, good())
	if err := readAll(valid, 0, rrdpxml.Limits{}); err != nil {
		t.Fatalf("the valid file is rejected: %v", err)
	}
	flipped := bytes.Clone(valid)
	flipped[bytes.Index(flipped, []byte("three"))] ^= 1

	withPin := func(mod func(s *irpkipb.Snapshot)) []byte {
		s := good()
		mod(s)
		return pinned(t, s)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		kind rrdpxml.Kind
		lim  rrdpxml.Limits
		want error
	}{
		{"pin mismatch", flipped, 0, rrdpxml.Limits{}, irpki.ErrPin},
		{"truncated", valid[:len(valid)-40], 0, rrdpxml.Limits{}, irpki.ErrTruncated},
		{"version 2", withPin(func(s *irpkipb.Snapshot) { s.Version = 2 }), 0, rrdpxml.Limits{}, irpki.ErrVersion},
		{"snapshot read as delta", valid, rrdpxml.KindDelta, rrdpxml.Limits{}, irpki.ErrInvalid},
		{"kind field says delta", withPin(func(s *irpkipb.Snapshot) { s.Kind = irpkipb.FileKind_FILE_KIND_DELTA }), 0, rrdpxml.Limits{}, irpki.ErrKind},
		{"duplicate uri", withPin(func(s *irpkipb.Snapshot) { s.Cas[1].Repo = s.Cas[0].Repo; s.Cas[1].Entries[0].Name = "x.roa" }), 0, rrdpxml.Limits{}, irpki.ErrInvalid},
		{"empty content", withPin(func(s *irpkipb.Snapshot) { s.Cas[0].Entries[0].Content = nil }), 0, rrdpxml.Limits{RejectEmptyContent: true}, irpki.ErrInvalid},
		{"delta publish without content", deltaWithoutContent(t), rrdpxml.KindDelta, rrdpxml.Limits{}, irpki.ErrInvalid},
		{"empty snapshot read as delta", withPin(func(s *irpkipb.Snapshot) { s.Cas = nil }), rrdpxml.KindDelta, rrdpxml.Limits{}, irpki.ErrKind},
		{"object over cap", valid, 0, rrdpxml.Limits{MaxObjectSize: 4}, irpki.ErrTooLarge},
		{"file over cap", valid, 0, rrdpxml.Limits{MaxFileSize: 100}, irpki.ErrTooLarge},
		{"too many objects", valid, 0, rrdpxml.Limits{MaxObjects: 2}, irpki.ErrTooLarge},
		{"zero serial", withPin(func(s *irpkipb.Snapshot) { s.Serial = 0 }), 0, rrdpxml.Limits{}, irpki.ErrInvalid},
		{"bad session", withPin(func(s *irpkipb.Snapshot) { s.Session = "not-a-uuid" }), 0, rrdpxml.Limits{}, irpki.ErrInvalid},
		{"no pin", func() []byte {
			b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(good())
			return b
		}(), 0, rrdpxml.Limits{}, irpki.ErrPin},
		{"field order", func() []byte {
			var b []byte
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendString(b, session)
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			return protowire.AppendVarint(b, 5)
		}(), 0, rrdpxml.Limits{}, irpki.ErrOrder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readAll(tc.in, tc.kind, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var fe *irpki.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FormatError", err)
			}
			if tc.kind != 0 {
				return // rejected for the caller's expectation, not for itself
			}
			// Nothing of a rejected .bin may come out as XML.
			var out bytes.Buffer
			if _, err := irpki.BinToXML(&out, bytes.NewReader(tc.in), irpki.Options{Limits: tc.lim}); err == nil {
				t.Fatalf("BinToXML accepted it")
			}
		})
	}
}

// deltaWithoutContent is a delta.bin whose publish lacks its content
// field: not a withdraw (it sits in modified), not a valid publish.
func deltaWithoutContent(t *testing.T) []byte {
	d := &irpkipb.Delta{
		Serial: 2, Session: irpkitest.Session(1), Version: 1, Kind: irpkipb.FileKind_FILE_KIND_DELTA,
		Cas: []*irpkipb.DeltaCA{{Repo: "rsync://example.net/r/", Modified: []*irpkipb.DeltaEntry{{Name: "a.roa"}}}},
	}
	det := proto.MarshalOptions{Deterministic: true}
	b, _ := det.Marshal(d.Cas[0])
	sum := sha256.Sum256(b)
	d.Cas[0].Pin = sum[:]
	out, err := det.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReaderBadURI(t *testing.T) {
	s := &irpkipb.Snapshot{
		Serial: 1, Session: irpkitest.Session(1), Version: 1, Kind: irpkipb.FileKind_FILE_KIND_SNAPSHOT,
		Cas: []*irpkipb.CA{{Repo: "https://example.net/", Entries: []*irpkipb.SnapshotEntry{{Name: "x.roa", Content: []byte("a")}}}},
	}
	err := readAll(pinned(t, s), 0, rrdpxml.Limits{})
	var fe *irpki.FormatError
	if !errors.As(err, &fe) || fe.URI != "https://example.net/x.roa" {
		t.Fatalf("got %v, want a *FormatError naming https://example.net/x.roa", err)
	}
}
