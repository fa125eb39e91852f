package rrdpxml

import (
	"bytes"
	"encoding/base64"
	"io"
	"reflect"
	"testing"
)

// FuzzDecoder feeds arbitrary input to the decoder, as snapshot, delta or
// notification. It must never panic, and whatever it accepts must
// re-encode canonically and decode again to the same.
func FuzzDecoder(f *testing.F) {
	for _, tc := range badCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		snap(pub(tURI, "QUJD") + pub(tURI2, "\n QU JD\n")),
		delta(pubHash(tURI, tHash, "QUJD") + wd(tURI2, tHash)),
		notif(snapRef(tHTTPS) + deltaRef("5", tHTTPS) + deltaRef("3", "https://r/d3.xml")),
		"\xef\xbb\xbf<?xml version=\"1.0\"?><!-- c -->" + snap(pub("rsync://h/a&amp;b", "&#81;UJD")),
		"<snapshot" + rootAttr + "/>",
	} {
		f.Add([]byte(s))
	}
	small, _ := generate(genSpec{seed: 5, kind: KindDelta, objects: 6, minObj: 1, maxObj: 100, wrap: 20})
	f.Add(small)

	f.Fuzz(func(t *testing.T, in []byte) {
		lim := Limits{MaxObjectSize: 1 << 16, MaxObjects: 1000, MaxDeltas: 1000}
		d := NewDecoder(bytes.NewReader(in), lim)
		defer d.Close()
		h, err := d.Header()
		if err != nil {
			return
		}
		if h.Kind == KindNotification {
			n, err := d.Notification()
			if err != nil {
				return
			}
			var b bytes.Buffer
			if err := EncodeNotification(&b, n); err != nil {
				t.Fatalf("accepted notification does not encode: %v", err)
			}
			n2, _, err := DecodeNotification(&b, Limits{})
			if err != nil {
				t.Fatalf("encoding does not decode: %v\n%s", err, b.Bytes())
			}
			if !reflect.DeepEqual(n, n2) {
				t.Fatalf("got %+v after round trip, want %+v", n2, n)
			}
			return
		}
		var els []elem
		for {
			e, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			els = append(els, elem{e.Withdraw, e.URI, e.Hash, e.HasHash, bytes.Clone(e.Content)})
		}
		if err := roundTrip(h, els); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeLines checks the line-by-line base64 fast path against the
// standard decoder: whenever the fast path succeeds, decoding the text in
// one piece succeeds with the same bytes.
func FuzzDecodeLines(f *testing.F) {
	for _, s := range []string{"QUJD", "QUJD\nREVG\nRw==", "QUJD\r\nREVG\r\n", "QQ==\nQUJD", "QUJ\nDREVG", "\n\nQUJD\n", "QU\rJD\nQQ=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n := base64.StdEncoding.DecodedLen(len(raw))
		fast, whole := make([]byte, n), make([]byte, n)
		m, ok := decodeLines(fast, raw)
		if !ok {
			return
		}
		w, err := base64.StdEncoding.Decode(whole, raw)
		if err != nil || !bytes.Equal(fast[:m], whole[:w]) {
			t.Fatalf("%q: line by line %x, in one piece %x (%v)", raw, fast[:m], whole[:w], err)
		}
	})
}
