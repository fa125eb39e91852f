package irpki_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// objectSet maps each URI of an RRDP file to its object (publish) or to the
// marker "withdraw:<hash>" (withdraw), with "<uri>#hash" for publish hashes.
type objectSet map[string]string

func xmlObjects(t testing.TB, x []byte) (rrdpxml.Header, objectSet) {
	t.Helper()
	dec := rrdpxml.NewDecoder(bytes.NewReader(x), rrdpxml.Limits{})
	defer dec.Close()
	h, err := dec.Header()
	if err != nil {
		t.Fatalf("xml header: %v", err)
	}
	set := objectSet{}
	for {
		el, err := dec.Next()
		if err == io.EOF {
			return h, set
		}
		if err != nil {
			t.Fatalf("xml: %v", err)
		}
		addObject(set, el.URI, el.Withdraw, el.HasHash, el.Hash, el.Content)
	}
}

func addObject(set objectSet, uri string, withdraw, hasHash bool, hash [32]byte, content []byte) {
	switch {
	case withdraw:
		set[uri] = "withdraw:" + hex.EncodeToString(hash[:])
	default:
		set[uri] = string(content)
		if hasHash {
			set[uri+"#hash"] = hex.EncodeToString(hash[:])
		}
	}
}

func binObjects(t testing.TB, b []byte) (rrdpxml.Header, objectSet) {
	t.Helper()
	rd := irpki.NewReader(bytes.NewReader(b), 0, rrdpxml.Limits{})
	h, err := rd.Header()
	if err != nil {
		t.Fatalf("bin header: %v", err)
	}
	set := objectSet{}
	for {
		g, err := rd.Next()
		if err == io.EOF {
			h.Kind = rd.Kind()
			return h, set
		}
		if err != nil {
			t.Fatalf("bin: %v", err)
		}
		for _, e := range g.Entries {
			addObject(set, g.Repo+e.Name, false, e.HasHash, e.Hash, e.Content)
		}
		for _, e := range g.Withdrawn {
			addObject(set, g.Repo+e.Name, true, true, e.Hash, nil)
		}
	}
}

func toBin(t testing.TB, x []byte) ([]byte, *irpki.Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := irpki.XMLToBin(&out, bytes.NewReader(x), irpki.Options{})
	if err != nil {
		t.Fatalf("XMLToBin: %v", err)
	}
	return out.Bytes(), res
}

func toXML(t testing.TB, b []byte) ([]byte, *irpki.Result) {
	t.Helper()
	var out bytes.Buffer
	res, err := irpki.BinToXML(&out, bytes.NewReader(b), irpki.Options{})
	if err != nil {
		t.Fatalf("BinToXML: %v", err)
	}
	return out.Bytes(), res
}

func synthSnapshot(t testing.TB, spec irpkitest.Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := irpkitest.WriteSnapshot(&b, spec); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func synthDelta(t testing.TB, spec irpkitest.Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := irpkitest.WriteDelta(&b, spec, spec.Serial+1, 7, 5); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkRoundTrip asserts what the issue asks of the transcoder for one
// XML file: XML -> .bin -> XML -> .bin gives identical .bin bytes; the
// object sets of the XML, the .bin and the regenerated XML are equal; the
// hand-written encoding is exactly what deterministic proto.Marshal gives;
// the sums in the results are right.
func checkRoundTrip(t *testing.T, x []byte) *irpki.Result {
	t.Helper()
	bin1, res := toBin(t, x)
	if got, want := res.InSum, sha256.Sum256(x); got != want {
		t.Errorf("input sum %x, want %x", got, want)
	}
	if got, want := res.OutSum, sha256.Sum256(bin1); got != want {
		t.Errorf("output sum %x, want %x", got, want)
	}
	if res.OutSize != int64(len(bin1)) || res.InSize != int64(len(x)) {
		t.Errorf("sizes in %d out %d, want %d %d", res.InSize, res.OutSize, len(x), len(bin1))
	}
	x2, res2 := toXML(t, bin1)
	if res2.Kind != res.Kind || res2.Serial != res.Serial || res2.Session != res.Session {
		t.Errorf("bin->xml header %v %d %s, want %v %d %s", res2.Kind, res2.Serial, res2.Session, res.Kind, res.Serial, res.Session)
	}
	bin2, _ := toBin(t, x2)
	if !bytes.Equal(bin1, bin2) {
		t.Fatalf("xml -> bin -> xml -> bin changed the .bin (%d -> %d bytes)", len(bin1), len(bin2))
	}
	h1, s1 := xmlObjects(t, x)
	h2, s2 := binObjects(t, bin1)
	_, s3 := xmlObjects(t, x2)
	if h1.SessionID != h2.SessionID || h1.Serial != h2.Serial || h1.Kind != h2.Kind {
		t.Errorf("bin header %+v, want %+v", h2, h1)
	}
	for name, s := range map[string]objectSet{"bin": s2, "regenerated xml": s3} {
		if len(s) != len(s1) {
			t.Errorf("%s holds %d entries, xml %d", name, len(s), len(s1))
		}
		for k, v := range s1 {
			if s[k] != v {
				t.Errorf("%s: %s differs from the xml", name, k)
				break
			}
		}
	}
	checkProtoEquivalent(t, bin1, res.Kind)
	return res
}

// checkProtoEquivalent decodes b with the generated code and re-marshals it
// deterministically: the bytes must be the same, and every pin must be the
// SHA-256 of its group marshalled without the pin.
func checkProtoEquivalent(t *testing.T, b []byte, kind rrdpxml.Kind) {
	t.Helper()
	det := proto.MarshalOptions{Deterministic: true}
	var m proto.Message
	switch kind {
	case rrdpxml.KindSnapshot:
		s := &irpkipb.Snapshot{}
		if err := proto.Unmarshal(b, s); err != nil {
			t.Fatal(err)
		}
		checkPins(t, s.Cas, func(ca *irpkipb.CA, pin []byte) { ca.Pin = pin })
		if s.Version != irpki.Version || s.Kind != irpkipb.FileKind_FILE_KIND_SNAPSHOT {
			t.Errorf("version %d kind %v", s.Version, s.Kind)
		}
		m = s
	default:
		d := &irpkipb.Delta{}
		if err := proto.Unmarshal(b, d); err != nil {
			t.Fatal(err)
		}
		checkPins(t, d.Cas, func(ca *irpkipb.DeltaCA, pin []byte) { ca.Pin = pin })
		if d.Kind != irpkipb.FileKind_FILE_KIND_DELTA {
			t.Errorf("kind %v", d.Kind)
		}
		m = d
	}
	again, err := det.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("proto.Marshal(deterministic) gives %d bytes that differ from our %d", len(again), len(b))
	}
}

// group is what CA and DeltaCA have in common.
type group interface {
	proto.Message
	GetRepo() string
	GetPin() []byte
}

// checkPins asserts that every group's pin is the SHA-256 of the group
// marshalled without it.
func checkPins[G group](t *testing.T, groups []G, setPin func(G, []byte)) {
	t.Helper()
	for _, g := range groups {
		pin := g.GetPin()
		setPin(g, nil)
		enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(enc); !bytes.Equal(sum[:], pin) {
			t.Fatalf("group %s: pin %x, want %x", g.GetRepo(), pin, sum)
		}
		setPin(g, pin)
	}
}

func TestRoundTripSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec irpkitest.Spec
	}{
		{"grouped", irpkitest.Spec{Seed: 1, Objects: 300}},
		{"interleaved", irpkitest.Spec{Seed: 2, Objects: 300, Interleave: true, Dirs: 17}},
		{"wrapped", irpkitest.Spec{Seed: 3, Objects: 100, Wrap: 64}},
		{"one group", irpkitest.Spec{Seed: 4, Objects: 50, Dirs: 1}},
		{"tiny objects", irpkitest.Spec{Seed: 5, Objects: 500, MinSize: 1, MaxSize: 40}},
		{"big objects", irpkitest.Spec{Seed: 6, Objects: 4, MinSize: 3 << 20, MaxSize: 5 << 20}},
		{"one object", irpkitest.Spec{Seed: 7, Objects: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := checkRoundTrip(t, synthSnapshot(t, tc.spec))
			if res.Objects != len(irpkitest.Objects(tc.spec)) {
				t.Errorf("objects %d, want %d", res.Objects, len(irpkitest.Objects(tc.spec)))
			}
			t.Run("delta", func(t *testing.T) {
				checkRoundTrip(t, synthDelta(t, tc.spec))
			})
		})
	}
}

func TestEmptyFiles(t *testing.T) {
	session := irpkitest.Session(9)
	// RFC 8182's schema: a delta holds at least one element.
	empty := `<delta xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + session + `" serial="4"/>`
	if _, err := irpki.XMLToBin(io.Discard, strings.NewReader(empty), irpki.Options{}); !errors.Is(err, rrdpxml.ErrEmptyDelta) {
		t.Errorf("empty delta: got %v, want %v", err, rrdpxml.ErrEmptyDelta)
	}
	for _, x := range []string{
		`<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + session + `" serial="3"></snapshot>`,
	} {
		bin, res := toBin(t, []byte(x))
		x2, res2 := toXML(t, bin)
		if res2.Kind != res.Kind || res.Groups != 0 || res2.Objects != 0 {
			t.Errorf("%s: kind %v -> %v, groups %d, objects %d", x, res.Kind, res2.Kind, res.Groups, res2.Objects)
		}
		_, k, err := irpki.Detect(bin)
		if err != nil || k != res.Kind {
			t.Errorf("Detect(%x) = %v, %v; want %v", bin, k, err, res.Kind)
		}
		if bin2, _ := toBin(t, x2); !bytes.Equal(bin, bin2) {
			t.Errorf("empty %v does not round-trip", res.Kind)
		}
	}
}

func TestDeterministic(t *testing.T) {
	x := synthSnapshot(t, irpkitest.Spec{Seed: 11, Objects: 200, Interleave: true})
	a, _ := toBin(t, x)
	for i := 0; i < 3; i++ {
		if b, _ := toBin(t, x); !bytes.Equal(a, b) {
			t.Fatalf("run %d gave other bytes", i)
		}
	}
}

func TestSessionOverride(t *testing.T) {
	x := synthSnapshot(t, irpkitest.Spec{Seed: 12, Objects: 20})
	bin, _ := toBin(t, x)
	derived := irpkitest.Session(99)
	var out bytes.Buffer
	res, err := irpki.BinToXML(&out, bytes.NewReader(bin), irpki.Options{Session: derived})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := xmlObjects(t, out.Bytes())
	if h.SessionID != derived || res.Session != derived {
		t.Errorf("session %s (result %s), want %s", h.SessionID, res.Session, derived)
	}
}
