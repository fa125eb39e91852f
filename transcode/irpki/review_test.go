package irpki_test

import (
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// A field that claims gigabytes in a file of a few bytes must fail as
// truncated without the reader allocating what the field claims.
func TestReaderClaimedLengthDoesNotAllocate(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, irpkitest.Session(1))
	b = protowire.AppendTag(b, 43, protowire.BytesType)
	b = protowire.AppendVarint(b, 3<<30)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"group", b},
		{"unknown field", append(protowire.AppendTag(b[:len(b)-len(protowire.AppendVarint(nil, 3<<30))-2], 77, protowire.BytesType), protowire.AppendVarint(nil, 3<<30)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := readAll(tc.in, 0, rrdpxml.Limits{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, irpki.ErrTruncated) {
				t.Fatalf("got %v, want ErrTruncated", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("allocated %d MB for a %d-byte file", grew>>20, len(tc.in))
			}
		})
	}
}

// Cutting the trailer anywhere must not read as a clean end of file.
func TestReaderTruncatedTrailer(t *testing.T) {
	bin, _ := toBin(t, synthSnapshot(t, irpkitest.Spec{Seed: 3, Objects: 5}))
	for cut := 1; cut <= 4; cut++ {
		if err := readAll(bin[:len(bin)-cut], 0, rrdpxml.Limits{}); err == nil {
			t.Errorf("cutting %d bytes: accepted", cut)
		}
	}
}

func TestReaderGroupingRules(t *testing.T) {
	session := irpkitest.Session(2)
	for _, tc := range []struct {
		name string
		ca   *irpkipb.CA
	}{
		{"repo without slash", &irpkipb.CA{Repo: "rsync://example.net/repo", Entries: []*irpkipb.SnapshotEntry{{Name: "/a.roa", Content: []byte("x")}}}},
		{"name with slash", &irpkipb.CA{Repo: "rsync://example.net/", Entries: []*irpkipb.SnapshotEntry{{Name: "repo/a.roa", Content: []byte("x")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &irpkipb.Snapshot{Serial: 1, Session: session, Version: 1, Kind: irpkipb.FileKind_FILE_KIND_SNAPSHOT, Cas: []*irpkipb.CA{tc.ca}}
			if err := readAll(pinned(t, s), 0, rrdpxml.Limits{}); !errors.Is(err, irpki.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}
