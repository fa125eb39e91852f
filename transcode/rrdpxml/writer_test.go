package rrdpxml

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWriterCanonical(t *testing.T) {
	h := hashOf(t, tHash)
	var b bytes.Buffer
	w, err := NewWriter(&b, Header{Kind: KindDelta, SessionID: strings.ToUpper(tSession), Serial: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		w.Publish("rsync://h/a&b.roa", nil, []byte("ABC")),
		w.Publish("rsync://h/c.roa", &h, []byte("ABCD")),
		w.Withdraw("rsync://h/d.roa", h),
		w.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := `<delta xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + tSession + `" serial="7">
  <publish uri="rsync://h/a&amp;b.roa">QUJD</publish>
  <publish uri="rsync://h/c.roa" hash="` + tHash + `">QUJDRA==</publish>
  <withdraw uri="rsync://h/d.roa" hash="` + tHash + `"/>
</delta>
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	b.Reset()
	w, err = NewWriter(&b, Header{Kind: KindSnapshot, SessionID: tSession, Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want = `<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + tSession + `" serial="1">
</snapshot>
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWriterRejects(t *testing.T) {
	h := hashOf(t, tHash)
	snapH := Header{Kind: KindSnapshot, SessionID: tSession, Serial: 1}
	deltaH := Header{Kind: KindDelta, SessionID: tSession, Serial: 1}
	for _, tc := range []struct {
		name string
		hdr  Header
		do   func(w *Writer) error
		want error
	}{
		{"notification kind", Header{Kind: KindNotification, SessionID: tSession, Serial: 1}, nil, ErrKind},
		{"bad session", Header{Kind: KindSnapshot, SessionID: "x", Serial: 1}, nil, ErrSessionID},
		{"serial 0", Header{Kind: KindSnapshot, SessionID: tSession}, nil, ErrSerial},
		{"hash in snapshot", snapH, func(w *Writer) error { return w.Publish(tURI, &h, []byte("x")) }, ErrUnexpectedHash},
		{"withdraw in snapshot", snapH, func(w *Writer) error { return w.Withdraw(tURI, h) }, ErrUnexpectedElement},
		{"https uri", snapH, func(w *Writer) error { return w.Publish(tHTTPS, nil, []byte("x")) }, ErrBadURI},
		{"dotdot uri", deltaH, func(w *Writer) error { return w.Withdraw("rsync://h/a/../b", h) }, ErrBadURI},
		{"quote in uri", deltaH, func(w *Writer) error { return w.Withdraw(`rsync://h/a"b`, h) }, ErrBadURI},
		{"long uri", deltaH, func(w *Writer) error { return w.Withdraw("rsync://h/"+strings.Repeat("a", 3000), h) }, ErrTooLarge},
		{"duplicate uri", deltaH, func(w *Writer) error {
			if err := w.Publish(tURI, nil, []byte("x")); err != nil {
				return err
			}
			return w.Withdraw(tURI, h)
		}, ErrDuplicateURI},
		{"object over cap", snapH, func(w *Writer) error { return w.Publish(tURI, nil, make([]byte, defaultMaxObjectSize+1)) }, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			w, err := NewWriter(&b, tc.hdr)
			if tc.do == nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("NewWriter: got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.do(w); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err := w.Publish(tURI2, nil, []byte("x")); !errors.Is(err, tc.want) {
				t.Errorf("after the error: got %v, want the same error", err)
			}
			if err := w.Close(); !errors.Is(err, tc.want) {
				t.Errorf("Close: got %v, want %v", err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes, want none", b.Len())
			}
		})
	}
}

type failWriter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

func TestWriterWriteError(t *testing.T) {
	w, err := NewWriter(&failWriter{n: 1 << 20}, Header{Kind: KindSnapshot, SessionID: tSession, Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	obj := make([]byte, 100<<10)
	var last error
	for i := 0; i < 100 && last == nil; i++ {
		last = w.Publish("rsync://h/"+strings.Repeat("x", i)+".roa", nil, obj)
	}
	if err := w.Close(); !errors.Is(err, errDiskFull) || !errors.Is(last, errDiskFull) {
		t.Errorf("got errors %v and %v, want %v", last, err, errDiskFull)
	}
}

// TestWriterLargeObjects checks objects larger than the write buffer.
func TestWriterLargeObjects(t *testing.T) {
	in, _ := generate(genSpec{seed: 11, objects: 4, minObj: writeBufSize - 1, maxObj: 3 * writeBufSize})
	h, els := collect(t, in)
	if err := roundTrip(h, els); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeNotification(t *testing.T) {
	h := hashOf(t, tHash)
	n := &Notification{SessionID: tSession, Serial: 9, Snapshot: SnapshotRef{URI: tHTTPS, Hash: h},
		Deltas: []DeltaRef{{Serial: 9, URI: "https://r/d9.xml?a=1&b=2", Hash: h}, {Serial: 7, URI: "https://r/d7.xml", Hash: h}}}
	var b bytes.Buffer
	if err := EncodeNotification(&b, n); err != nil {
		t.Fatal(err)
	}
	want := `<notification xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + tSession + `" serial="9">
  <snapshot uri="` + tHTTPS + `" hash="` + tHash + `"/>
  <delta serial="9" uri="https://r/d9.xml?a=1&amp;b=2" hash="` + tHash + `"/>
  <delta serial="7" uri="https://r/d7.xml" hash="` + tHash + `"/>
</notification>
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	for _, tc := range []struct {
		name string
		edit func(n *Notification)
		want error
	}{
		{"bad session", func(n *Notification) { n.SessionID = "x" }, ErrSessionID},
		{"serial 0", func(n *Notification) { n.Serial = 0 }, ErrSerial},
		{"rsync snapshot", func(n *Notification) { n.Snapshot.URI = tURI }, ErrBadURI},
		{"delta above", func(n *Notification) { n.Deltas[0].Serial = 10 }, ErrDeltaSerial},
		{"delta serial 0", func(n *Notification) { n.Deltas[0].Serial = 0 }, ErrSerial},
		{"duplicate serial", func(n *Notification) { n.Deltas[1].Serial = 9 }, ErrDuplicateSerial},
		{"http delta", func(n *Notification) { n.Deltas[1].URI = "http://r/d7.xml" }, ErrBadURI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *n
			m.Deltas = append([]DeltaRef(nil), n.Deltas...)
			tc.edit(&m)
			var b bytes.Buffer
			if err := EncodeNotification(&b, &m); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes, want none", b.Len())
			}
		})
	}
}

func TestWriterAllocs(t *testing.T) {
	w, err := NewWriter(&countingWriter{}, Header{Kind: KindSnapshot, SessionID: tSession, Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	uris := make([]string, 3000)
	for i := range uris {
		uris[i] = "rsync://rpki.example.net/repo/" + strings.Repeat("d", i%7) + "/" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ".roa"
	}
	obj := make([]byte, 2000)
	i := 0
	for ; i < 500; i++ {
		if err := w.Publish(uris[i], nil, obj); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if err := w.Publish(uris[i], nil, obj); err != nil {
			t.Fatal(err)
		}
		i++
	})
	t.Logf("%.3f allocations per element", allocs)
	if allocs > 0.05 {
		t.Errorf("got %.3f allocations per element, want 0 but for the amortised growth of the duplicate set", allocs)
	}
}
