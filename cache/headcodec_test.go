package cache_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

func sampleHead() *cache.Head {
	t0 := time.Date(2026, 12, 2, 3, 4, 5, 600, time.UTC)
	return &cache.Head{
		Repo: "https://rrdp.example.net/notification.xml", Session: "9df4b597-af9e-4dca-bdda-719cce2c4e28", Serial: 7, Resets: 1,
		Origin: irpki.FormatXML, Transparent: true, Time: t0,
		NotificationXML: []byte("<notification/>"), NotificationBin: []byte{1, 2, 3},
		Files: []cache.File{
			{Path: "s/7/ab/snapshot.xml", Sum: [32]byte{1}, Size: 10, Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: 7, Upstream: [32]byte{9}, Index: [32]byte{4}},
			{Path: "s/7/ab/snapshot.xml", Sum: [32]byte{2}, Size: 5, Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: 7, Gzip: true},
			{Path: "s/6/cd/delta.bin", Sum: [32]byte{3}, Size: 3, Format: irpki.FormatBin, Kind: rrdpxml.KindDelta, Serial: 6, Expires: t0.Add(2 * time.Hour)},
		},
	}
}

func TestHeadCodec(t *testing.T) {
	h := sampleHead()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"v":2,`)) {
		t.Errorf("stored head starts %.20q, want the version first", b)
	}
	var got cache.Head
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, h) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, *h)
	}

	// A head stored by the builds before the schema moved (version 1,
	// the untagged default encoding) still loads.
	type fileV1 struct {
		Path     string
		Sum      [32]byte
		Size     int64
		Format   irpki.Format
		Kind     rrdpxml.Kind
		Serial   uint64
		Expires  time.Time
		Upstream [32]byte
		Gzip     bool
	}
	v1 := map[string]any{"Repo": h.Repo, "Session": h.Session, "Serial": h.Serial, "Resets": h.Resets, "Origin": h.Origin,
		"Transparent": true, "Time": h.Time, "NotificationXML": h.NotificationXML, "NotificationBin": h.NotificationBin,
		"Files": []fileV1{{Path: "p", Sum: [32]byte{7}, Size: 1, Format: irpki.FormatBin, Kind: rrdpxml.KindDelta, Serial: 3}}}
	old, err := json.Marshal(v1)
	if err != nil {
		t.Fatal(err)
	}
	var fromOld cache.Head
	if err := json.Unmarshal(old, &fromOld); err != nil {
		t.Fatalf("version 1 head: %v", err)
	}
	want := cache.File{Path: "p", Sum: [32]byte{7}, Size: 1, Format: irpki.FormatBin, Kind: rrdpxml.KindDelta, Serial: 3}
	if fromOld.Serial != 7 || !fromOld.Time.Equal(h.Time) || len(fromOld.Files) != 1 || fromOld.Files[0] != want {
		t.Errorf("version 1 head: got %+v", fromOld)
	}

	for _, tc := range []struct{ name, in, want string }{
		{"future version", `{"v":3}`, "version 3"},
		{"bad sum", strings.Replace(string(b), `"sum":"01`, `"sum":"zz`, 1), "sum"},
		{"unknown field", strings.Replace(string(b), `"v":2,`, `"v":2,"extra":1,`, 1), "extra"},
		{"bad kind", strings.Replace(string(b), `"kind":"delta"`, `"kind":"deltas"`, 1), "kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h cache.Head
			err := json.Unmarshal([]byte(tc.in), &h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestParts(t *testing.T) {
	parts := []cache.Part{{Data: []byte("<snapshot>")}, {Sum: [32]byte{1}, Size: 1 << 20}, {Data: []byte{}}, {Sum: [32]byte{2}, Size: 3}}
	b := cache.EncodeParts(parts)
	got, err := cache.DecodeParts(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range parts {
		if got[i].Sum != parts[i].Sum || got[i].Size != int64(max(len(parts[i].Data), int(parts[i].Size))) || !bytes.Equal(got[i].Data, parts[i].Data) {
			t.Errorf("part %d: got %+v, want %+v", i, got[i], parts[i])
		}
	}
	for n := range len(b) {
		if _, err := cache.DecodeParts(b[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

// TestAppendPartSums: the sums of a list's blobs, in order, appended to
// what the caller had; the errors of DecodeParts; no allocation once the
// destination has room (the cap's pass reads every retained list).
func TestAppendPartSums(t *testing.T) {
	parts := []cache.Part{{Data: []byte("<snapshot>")}, {Sum: [32]byte{1}, Size: 1 << 20}, {Data: []byte{}}, {Sum: [32]byte{2}, Size: 3}}
	b := cache.EncodeParts(parts)
	got, err := cache.AppendPartSums([][32]byte{{9}}, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][32]byte{{9}, {1}, {2}}; !slices.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
	for n := range len(b) {
		_, derr := cache.DecodeParts(b[:n])
		got, err := cache.AppendPartSums([][32]byte{{9}}, b[:n])
		if err == nil || derr == nil || err.Error() != derr.Error() || len(got) != 1 {
			t.Errorf("truncated to %d bytes: got %v (%d sums), DecodeParts %v", n, err, len(got), derr)
		}
	}
	// A longer encoding of the count is refused, as by DecodeParts.
	long := append([]byte("rrdp-proxy parts\x01"), 0x80, 0x00)
	if _, err := cache.AppendPartSums(nil, long); !errors.Is(err, cache.ErrParts) {
		t.Errorf("count in two bytes: got %v, want %v", err, cache.ErrParts)
	}
	dst := make([][32]byte, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst, _ = cache.AppendPartSums(dst[:0], b) }); n != 0 {
		t.Errorf("%v allocations a list, want 0", n)
	}
}

func FuzzDecodeParts(f *testing.F) {
	f.Add(cache.EncodeParts([]cache.Part{{Data: []byte("x")}, {Sum: [32]byte{1}, Size: 9}}))
	f.Add([]byte("rrdp-proxy parts\x01\x05"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := cache.DecodeParts(b)
		if err != nil {
			return
		}
		if again := cache.EncodeParts(parts); !bytes.Equal(again, b) {
			t.Errorf("re-encoded %x, want %x", again, b)
		}
	})
}
