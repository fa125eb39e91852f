package cache

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// reflectJSON is the encoding WriteJSON replaced: headV2 through
// encoding/json. WriteJSON must give its bytes.
func reflectJSON(t testing.TB, h *Head) []byte {
	t.Helper()
	origin, _ := nameOf(formatNames, h.Origin, "origin format")
	v := headV2{V: headVersion, Repo: h.Repo, Session: h.Session, Serial: h.Serial, Resets: h.Resets, Origin: origin,
		Transparent: h.Transparent, Time: timeText(h.Time), NotificationXML: h.NotificationXML, NotificationBin: h.NotificationBin,
		Files: make([]fileV2, len(h.Files))}
	for i, f := range h.Files {
		fm, _ := nameOf(formatNames, f.Format, "format")
		kd, _ := nameOf(kindNames, f.Kind, "kind")
		v.Files[i] = fileV2{Path: f.Path, Sum: hex.EncodeToString(f.Sum[:]), Size: f.Size, Format: fm, Kind: kd, Serial: f.Serial,
			Expires: timeText(f.Expires), Upstream: sumHex(f.Upstream), Gzip: f.Gzip, Index: sumHex(f.Index)}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteJSON(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 5, 6, 7, 890, time.FixedZone("x", 3600))
	full := &Head{Repo: "https://rrdp.example.net/notification.xml", Session: "9df4b597-af9e-4dca-bdda-719cce2c4e28", Serial: 1 << 40, Resets: 3,
		Origin: irpki.FormatBin, Transparent: true, Time: t0, NotificationXML: []byte("<notification a=\"&\"/>"), NotificationBin: []byte{}}
	for i := range 3000 { // more than one writeChunk
		full.Files = append(full.Files, File{Path: "s/7/ab/snapshot.xml", Sum: [32]byte{byte(i)}, Size: int64(i) - 1, Format: irpki.FormatXML,
			Kind: rrdpxml.KindSnapshot, Serial: uint64(i), Upstream: [32]byte{31: 9}, Index: [32]byte{4}, Gzip: i%2 == 0, Expires: t0.Add(time.Duration(i) * time.Second)})
	}
	for _, tc := range []struct {
		name string
		h    *Head
	}{
		{"zero", &Head{}},
		{"no files", &Head{Repo: "r", Files: []File{}}},
		{"full", full},
		{"escapes", &Head{Repo: "https://a.example/<b>&\"\\\u2028é\xff\x01/n.xml", Session: "s\tt",
			Files: []File{{Path: "ä/<x>&y\"z\x7f\n"}, {Path: "plain"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := reflectJSON(t, tc.h)
			var buf bytes.Buffer
			n, err := tc.h.WriteJSON(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) || n != int64(len(want)) {
				t.Errorf("WriteJSON wrote %d bytes (said %d), want the %d of encoding/json:\ngot  %.300q\nwant %.300q", buf.Len(), n, len(want), buf.Bytes(), want)
			}
			var back Head
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatalf("decode: %v", err)
			}
		})
	}

	// A failing writer's error comes back, named.
	werr := errors.New("disk full")
	fw := &failWriter{err: werr}
	if _, err := full.WriteJSON(fw); !errors.Is(err, werr) {
		t.Errorf("got %v, want %v", err, werr)
	}
	// and the encoding stops there: one write, not one per chunk of the
	// rest of the head.
	if fw.calls != 1 {
		t.Errorf("after the writer's error: %d writes, want 1", fw.calls)
	}
	// A writer that takes less than it was given without an error is a
	// short write.
	if _, err := full.WriteJSON(shortWriter{}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("short writer: got %v, want %v", err, io.ErrShortWrite)
	}
}

type failWriter struct {
	err   error
	calls int
}

func (w *failWriter) Write([]byte) (int, error) { w.calls++; return 0, w.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// BenchmarkWriteJSON: a head of 4,800 retained files (600 serials of 8
// files), written to io.Discard, against encoding/json's reflection.
func BenchmarkWriteJSON(b *testing.B) {
	h := &Head{Repo: "https://rrdp.example.net/notification.xml", Session: "9df4b597-af9e-4dca-bdda-719cce2c4e28", Serial: 700, Time: time.Now()}
	for i := range 4800 {
		h.Files = append(h.Files, File{Path: "9df4b597-af9e-4dca-bdda-719cce2c4e28/123/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/snapshot.xml",
			Sum: [32]byte{byte(i)}, Size: 12345678, Format: irpki.FormatXML, Kind: rrdpxml.KindSnapshot, Serial: uint64(i),
			Upstream: [32]byte{1}, Index: [32]byte{2}, Expires: time.Now()})
	}
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.WriteJSON(discard{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reflectJSON(b, h)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
