package irpki_test

import (
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

func TestDerivedSession(t *testing.T) {
	up := "cd0c701d-ff09-4e95-8f2a-fa24de875fb5"
	a, b := irpki.DerivedSession(up), irpki.DerivedSession(up)
	if a != b {
		t.Fatalf("not deterministic: %s, %s", a, b)
	}
	if a == up || !rrdpxml.ValidSessionID(a) {
		t.Fatalf("derived %q: want a canonical UUID other than the upstream's", a)
	}
	if a[14] != '5' {
		t.Errorf("derived %q is not a version-5 UUID", a)
	}
	if irpki.DerivedSession("bf64ea72-ebb8-462f-99fb-8cd06f418565") == a {
		t.Error("two upstream sessions derive the same id")
	}
	// The value is part of the protocol between nodes: pin it. The
	// expected value comes from an independent RFC 9562 implementation
	// (Python's uuid.uuid5 with the same namespace and name).
	if want := "0f55fb18-cef3-5bed-9ab9-d3e796f89360"; a != want {
		t.Errorf("DerivedSession(%s) = %s, want %s", up, a, want)
	}
}
