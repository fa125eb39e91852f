package rrdpxml

import (
	"crypto/sha256"
	"io"
	"strings"
	"testing"
)

// TestDecoderUnhashed: NewDecoderUnhashed gives the elements NewDecoder
// gives, with a zero Sum; NewDecoder's Sum is the input's SHA-256.
func TestDecoderUnhashed(t *testing.T) {
	in := snap(pub(tURI, "QUJD") + pub(tURI2, "REVG"))
	decode := func(d *Decoder) []string {
		t.Helper()
		defer d.Close()
		var got []string
		for {
			e, err := d.Next()
			if err == io.EOF {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.URI+" "+string(e.Content))
		}
	}
	h, u := NewDecoder(strings.NewReader(in), Limits{}), NewDecoderUnhashed(strings.NewReader(in), Limits{})
	want, got := decode(h), decode(u)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) != 2 {
		t.Fatalf("unhashed: got %q, want %q", got, want)
	}
	if h.Sum() != sha256.Sum256([]byte(in)) || u.Sum() != ([32]byte{}) {
		t.Errorf("sums %x and %x, want the input's and zero", h.Sum(), u.Sum())
	}
}
