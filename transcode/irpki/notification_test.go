package irpki_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

func testNotification() *rrdpxml.Notification {
	s := irpkitest.Session(3)
	return &rrdpxml.Notification{
		SessionID: s,
		Serial:    12,
		Snapshot:  rrdpxml.SnapshotRef{URI: "https://rrdp.example.net/" + s + "/12/snapshot.xml", Hash: [32]byte{1}},
		Deltas: []rrdpxml.DeltaRef{
			{Serial: 12, URI: "https://rrdp.example.net/" + s + "/12/delta.xml", Hash: [32]byte{2}},
			{Serial: 11, URI: "https://rrdp.example.net/" + s + "/11/delta.xml", Hash: [32]byte{3}},
			{Serial: 10, URI: "https://rrdp.example.net/" + s + "/10/delta.xml", Hash: [32]byte{4}},
		},
	}
}

func TestMapNotification(t *testing.T) {
	n := testNotification()
	sums := irpki.Sums{Snapshot: [32]byte{0xaa, 0xbb}, Deltas: map[uint64][32]byte{12: {0xcc}, 10: {0xdd}}}
	got := irpki.MapNotification(n, "https://edge.example.org/rrdp/", irpki.FormatBin, sums)
	wantSnap := "https://edge.example.org/rrdp/" + n.SessionID + "/12/aabb000000000000/snapshot.bin"
	if got.Snapshot.URI != wantSnap || got.Snapshot.Hash != sums.Snapshot {
		t.Errorf("snapshot %s %x, want %s", got.Snapshot.URI, got.Snapshot.Hash, wantSnap)
	}
	if len(got.Deltas) != 2 || got.Deltas[0].Serial != 12 || got.Deltas[1].Serial != 10 {
		t.Fatalf("deltas %+v, want serials 12 and 10 (11 has no file)", got.Deltas)
	}
	if !strings.HasSuffix(got.Deltas[1].URI, "/10/dd00000000000000/delta.bin") {
		t.Errorf("delta uri %s", got.Deltas[1].URI)
	}
}

func TestNotificationRoundTrip(t *testing.T) {
	n := testNotification()
	b, err := irpki.MarshalNotification(n)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := irpki.MarshalNotification(n)
	if !bytes.Equal(b, b2) {
		t.Fatal("notification.bin is not deterministic")
	}
	got, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, n) {
		t.Errorf("got %+v, want %+v", got, n)
	}
	if f, k, err := irpki.Detect(b); f != irpki.FormatBin || k != rrdpxml.KindNotification || err != nil {
		t.Errorf("Detect = %v %v %v", f, k, err)
	}
}

func TestNotificationRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(n *rrdpxml.Notification)
	}{
		{"zero serial", func(n *rrdpxml.Notification) { n.Serial = 0 }},
		{"bad session", func(n *rrdpxml.Notification) { n.SessionID = "x" }},
		{"rsync snapshot uri", func(n *rrdpxml.Notification) { n.Snapshot.URI = "rsync://x/y.xml" }},
		{"delta after serial", func(n *rrdpxml.Notification) { n.Deltas[0].Serial = 13 }},
		{"duplicate delta", func(n *rrdpxml.Notification) { n.Deltas[1].Serial = 12 }},
		{"dot-dot uri", func(n *rrdpxml.Notification) { n.Deltas[2].URI = "https://rrdp.example.net/a/../delta.xml" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNotification()
			tc.mod(n)
			if _, err := irpki.MarshalNotification(n); err == nil {
				t.Fatal("MarshalNotification accepted it")
			}
		})
	}
	if _, err := irpki.UnmarshalNotification([]byte{0x08}, rrdpxml.Limits{}); err == nil {
		t.Error("a truncated notification.bin was accepted")
	}
	big := make([]byte, 200)
	if _, err := irpki.UnmarshalNotification(big, rrdpxml.Limits{MaxFileSize: 100}); !errors.Is(err, irpki.ErrTooLarge) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
}

func TestDetect(t *testing.T) {
	snapXML := synthSnapshot(t, irpkitest.Spec{Seed: 1, Objects: 3})
	snapBin, _ := toBin(t, snapXML)
	deltaXML := synthDelta(t, irpkitest.Spec{Seed: 1, Objects: 30})
	deltaBin, _ := toBin(t, deltaXML)
	for _, tc := range []struct {
		name string
		in   []byte
		f    irpki.Format
		k    rrdpxml.Kind
	}{
		{"snapshot xml", snapXML, irpki.FormatXML, rrdpxml.KindSnapshot},
		{"snapshot bin", snapBin, irpki.FormatBin, rrdpxml.KindSnapshot},
		{"snapshot bin cut", snapBin[:200], irpki.FormatBin, rrdpxml.KindSnapshot},
		{"delta xml", deltaXML, irpki.FormatXML, rrdpxml.KindDelta},
		{"delta bin", deltaBin, irpki.FormatBin, rrdpxml.KindDelta},
		{"delta bin cut", deltaBin[:300], irpki.FormatBin, rrdpxml.KindDelta},
		{"xml decl and comment", []byte("\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- hi --><notification"), irpki.FormatXML, rrdpxml.KindNotification},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, k, err := irpki.Detect(tc.in)
			if err != nil || f != tc.f || k != tc.k {
				t.Errorf("got %v %v %v, want %v %v", f, k, err, tc.f, tc.k)
			}
		})
	}
	for _, bad := range []string{"", "hello", "<html>", "\x08\x01"} {
		if _, _, err := irpki.Detect([]byte(bad)); err == nil {
			t.Errorf("Detect(%q) gave no error", bad)
		}
	}
}
