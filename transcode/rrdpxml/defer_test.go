package rrdpxml

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestDeferContent: with DeferContent, Next gives the elements of an eager
// decoder (URIs, hashes, places) without their content, and Content
// decodes the same bytes, whether it is called for every element, for
// some or for none; End is where the element ends, so that the input in
// [Offset, End) alone, in another snapshot, decodes to the same element.
func TestDeferContent(t *testing.T) {
	var body strings.Builder
	for i := range 400 {
		c := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 1+i*37%3000))
		switch i % 4 {
		case 0:
			body.WriteString(pub(fmt.Sprintf("rsync://h/r/%d.roa", i), c))
		case 1: // wrapped in lines, as most servers write it
			var w strings.Builder
			for len(c) > 64 {
				w.WriteString(c[:64] + "\n")
				c = c[64:]
			}
			body.WriteString("<!-- a comment -->\n  " + pub(fmt.Sprintf("rsync://h/r/%d.cer", i), "\n"+w.String()+c+"\n"))
		case 2: // spaces inside: the compacting path
			body.WriteString(pub(fmt.Sprintf("rsync://h/r/%d.crl", i), c[:len(c)/4*4/2]+" \t"+c[len(c)/4*4/2:]))
		default:
			body.WriteString(`<publish uri="rsync://h/r/` + fmt.Sprint(i) + `.mft"/>` + "\n")
		}
	}
	in := []byte(snap(body.String()))

	type elem struct {
		uri         string
		content     []byte
		line        int
		offset, end int64
	}
	decode := func(r io.Reader, deferred bool, want func(i int) bool) []elem {
		t.Helper()
		d := NewDecoder(r, Limits{})
		defer d.Close()
		if deferred {
			d.DeferContent()
		}
		var out []elem
		for i := 0; ; i++ {
			e, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if deferred && e.Content != nil && len(e.Content) > 0 {
				t.Fatalf("element %d: deferred content already decoded", i)
			}
			el := elem{e.URI, nil, e.Line, e.Offset, e.End}
			if want(i) {
				c, err := d.Content()
				if err != nil {
					t.Fatal(err)
				}
				el.content = bytes.Clone(c)
			}
			out = append(out, el)
		}
		return out
	}
	all := func(int) bool { return true }
	eager := decode(bytes.NewReader(in), false, all)
	if len(eager) != 400 {
		t.Fatalf("%d elements, want 400", len(eager))
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
		want func(int) bool
	}{
		{"every content", bytes.NewReader(in), all},
		{"every third", bytes.NewReader(in), func(i int) bool { return i%3 == 0 }},
		{"none", bytes.NewReader(in), func(int) bool { return false }},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(in)), func(i int) bool { return i%2 == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(tc.r, true, tc.want)
			for i, g := range got {
				w := eager[i]
				if !tc.want(i) {
					w.content = nil
				}
				if g.uri != w.uri || g.line != w.line || g.offset != w.offset || g.end != w.end || !bytes.Equal(g.content, w.content) {
					t.Fatalf("element %d: got %s line %d [%d, %d) %d bytes, want %s line %d [%d, %d) %d bytes", i, g.uri, g.line, g.offset, g.end, len(g.content), w.uri, w.line, w.offset, w.end, len(w.content))
				}
			}
		})
	}
	for i, e := range eager {
		one := decode(strings.NewReader(snap(string(in[e.offset:e.end]))), false, all)
		if len(one) != 1 || one[0].uri != e.uri || !bytes.Equal(one[0].content, e.content) {
			t.Fatalf("element %d: its bytes [%d, %d) alone do not decode to it", i, e.offset, e.end)
		}
		if i+1 < len(eager) && e.end > eager[i+1].offset {
			t.Fatalf("element %d ends at %d, after the next one starts (%d)", i, e.end, eager[i+1].offset)
		}
	}
}

// TestDeferContentErrors: what only the content's decoding finds is found
// by Content, with the place Next would have given, and fails the
// decoder; an element whose Content is not asked for is not decoded.
func TestDeferContentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		lim  Limits
		want error
	}{
		{"bad base64", snap(pub(tURI, "QUJD") + pub(tURI2, "QU*D")), Limits{}, ErrBadBase64},
		{"too large", snap(pub(tURI, "QUJD") + pub(tURI2, "QUJDRA==")), Limits{MaxObjectSize: 3}, ErrTooLarge},
		{"empty", snap(pub(tURI, "QUJD") + pub(tURI2, " \n ")), Limits{RejectEmptyContent: true}, ErrEmptyContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eagerErr := decodeAny([]byte(tc.in), tc.lim)
			var want *SyntaxError
			if !errors.As(eagerErr, &want) || !errors.Is(eagerErr, tc.want) {
				t.Fatalf("eager: got %v, want %v", eagerErr, tc.want)
			}
			// Not asked for: the rest of the input decodes.
			d := NewDecoder(strings.NewReader(tc.in), tc.lim)
			d.DeferContent()
			n := 0
			for {
				_, err := d.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("content not asked for: %v", err)
				}
				n++
			}
			d.Close()
			if n != 2 {
				t.Fatalf("got %d elements, want 2", n)
			}
			d = NewDecoder(strings.NewReader(tc.in), tc.lim)
			defer d.Close()
			d.DeferContent()
			for i := 0; ; i++ {
				if _, err := d.Next(); err != nil {
					t.Fatalf("element %d: %v", i, err)
				}
				_, err := d.Content()
				if i == 0 {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				var got *SyntaxError
				if !errors.As(err, &got) || !errors.Is(err, tc.want) || got.Offset != want.Offset || got.Line != want.Line || got.URI != want.URI {
					t.Fatalf("got %v, want %v", err, eagerErr)
				}
				if _, err := d.Next(); !errors.Is(err, tc.want) {
					t.Fatalf("after the error: Next gave %v", err)
				}
				return
			}
		})
	}
}

// FuzzDeferContent: on any input, a decoder with DeferContent that asks
// for every content gives what an eager decoder gives (elements, places,
// contents, the first error and where); one that asks for none accepts
// what the eager one accepts, or less only by errors in contents; and an
// element's bytes [Offset, End) alone decode to the same element.
func FuzzDeferContent(f *testing.F) {
	for _, tc := range badCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		snap(pub(tURI, "QUJD") + pub(tURI2, "\n QU JD\n")),
		snap(pub(tURI, "QU*D") + pub(tURI2, "QUJD")),
		snap("<!-- c -->" + pub(tURI, "&#81;UJD") + `<publish uri="` + tURI2 + `"/>`),
		delta(pubHash(tURI, tHash, "QUJD") + wd(tURI2, tHash)),
	} {
		f.Add([]byte(s))
	}
	type result struct {
		uri         string
		content     string
		line        int
		offset, end int64
	}
	run := func(in []byte, deferred, ask bool) ([]result, error) {
		lim := Limits{MaxObjectSize: 1 << 16, MaxObjects: 1000}
		d := NewDecoder(bytes.NewReader(in), lim)
		defer d.Close()
		if deferred {
			d.DeferContent()
		}
		var out []result
		for {
			e, err := d.Next()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			c := e.Content
			if ask {
				if c, err = d.Content(); err != nil {
					return out, err
				}
			}
			out = append(out, result{e.URI, string(c), e.Line, e.Offset, e.End})
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		eager, eerr := run(in, false, true)
		got, gerr := run(in, true, true)
		if fmt.Sprint(eerr) != fmt.Sprint(gerr) || len(got) != len(eager) {
			t.Fatalf("deferred: %d elements, error %v; eager: %d, %v", len(got), gerr, len(eager), eerr)
		}
		for i := range got {
			if got[i] != eager[i] {
				t.Fatalf("element %d: deferred %+v, eager %+v", i, got[i], eager[i])
			}
		}
		lazy, lerr := run(in, true, false)
		if len(lazy) < len(eager) || lerr != nil && eerr == nil {
			t.Fatalf("not asking for contents: %d elements, error %v; eager: %d, %v", len(lazy), lerr, len(eager), eerr)
		}
		if eerr != nil {
			return
		}
		for i, e := range eager {
			one, err := run([]byte(snap(string(in[e.offset:e.end]))), false, true)
			if err != nil || len(one) != 1 || one[0].uri != e.uri || one[0].content != e.content {
				// A delta's elements are not a snapshot's: skip them.
				if bytes.Contains(in[e.offset:e.end], []byte("hash")) || bytes.HasPrefix(in[e.offset:e.end], []byte("<withdraw")) {
					continue
				}
				t.Fatalf("element %d: its bytes %q alone give %+v, %v", i, in[e.offset:e.end], one, err)
			}
		}
	})
}
