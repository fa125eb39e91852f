package rrdpxml

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// endless is an input of a prefix and then one byte repeated, up to size
// bytes in all; it counts what is read from it.
type endless struct {
	prefix string
	fill   byte
	size   int64
	read   int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.size-e.read)]
	n := 0
	if e.read < int64(len(e.prefix)) {
		n = copy(p, e.prefix[e.read:])
	}
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestHostileStreams feeds endless inputs and checks that each fails with
// the right error after reading a small, bounded part of its 200 MB, and
// without allocating much.
func TestHostileStreams(t *testing.T) {
	const size = 200 << 20
	root := "<snapshot" + rootAttr + ">\n"
	for _, tc := range []struct {
		name     string
		prefix   string
		fill     byte
		lim      Limits
		want     error
		maxBytes int64 // bytes read and allocated at most
	}{
		{"attribute", root + `<publish uri="rsync://h/`, 'a', Limits{}, ErrTooLarge, 4 << 20},
		{"attribute name", root + `<publish `, 'a', Limits{}, ErrTooLarge, 4 << 20},
		{"whitespace in tag", root + `<publish `, ' ', Limits{}, ErrTooLarge, 4 << 20},
		{"comment", root + "<!--", 'x', Limits{}, ErrTooLarge, 8 << 20},
		{"content", root + `<publish uri="rsync://h/a">`, 'A', Limits{MaxObjectSize: 1 << 20}, ErrTooLarge, 8 << 20},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE x [`, '<', Limits{}, ErrDoctype, 4 << 20},
		{"whitespace between elements", root, '\n', Limits{MaxFileSize: 8 << 20}, ErrTooLarge, 12 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &endless{prefix: tc.prefix, fill: tc.fill, size: size}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d := NewDecoder(in, tc.lim)
			_, err := d.Next()
			d.Close()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if in.read > tc.maxBytes {
				t.Errorf("read %d bytes before failing, want at most %d", in.read, tc.maxBytes)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(tc.maxBytes) {
				t.Errorf("allocated %d bytes, want at most %d", alloc, tc.maxBytes)
			}
		})
	}
}

// TestManyElements checks MaxObjects on a stream of valid elements.
func TestManyElements(t *testing.T) {
	in, _ := generate(genSpec{seed: 3, objects: 500, minObj: 1, maxObj: 8, size: 1 << 30})
	_, els, _, err := decodeElems(bytes.NewReader(in), Limits{MaxObjects: 100})
	if !errors.Is(err, ErrTooLarge) || len(els) != 100 {
		t.Fatalf("got %d elements and error %v, want 100 and %v", len(els), err, ErrTooLarge)
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// TestReadError checks that a failing reader's error comes through as is,
// io.ErrUnexpectedEOF included (it must not pass for a clean end).
func TestReadError(t *testing.T) {
	whole := snap(pub(tURI, "QUJD"))
	for _, in := range []string{whole[:100], whole} {
		for _, cause := range []error{io.ErrUnexpectedEOF, errors.New("connection reset")} {
			_, _, _, err := decodeElems(&failingReader{strings.NewReader(in), cause}, Limits{})
			if !errors.Is(err, cause) {
				t.Errorf("%d bytes then %v: got error %v, want %v", len(in), cause, err, cause)
			}
			var se *SyntaxError
			if errors.As(err, &se) {
				t.Errorf("%d bytes then %v: got a SyntaxError %v, want a read error", len(in), cause, err)
			}
		}
	}
}

// TestClose checks that Close stops the read-ahead goroutine of a decoder
// dropped early, and that a closed decoder refuses work.
func TestClose(t *testing.T) {
	in := &endless{prefix: "<snapshot" + rootAttr + ">\n", fill: '\n', size: 1 << 40}
	d := NewDecoder(in, Limits{})
	if _, err := d.Header(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.feed.done:
	default:
		t.Fatal("read-ahead goroutine still running after Close")
	}
	if _, err := d.Next(); err == nil {
		t.Error("Next after Close: got no error")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNextAllocs checks that Next allocates nothing per element in steady
// state but the URI string.
func TestNextAllocs(t *testing.T) {
	in, _ := generate(genSpec{seed: 9, objects: 3000, size: 1 << 30})
	d := NewDecoder(bytes.NewReader(in), Limits{})
	defer d.Close()
	for range 500 {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(2000, func() {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.3f allocations per element", allocs)
	// One for the URI, plus the amortised growth of the duplicate set.
	if allocs > 1.05 {
		t.Errorf("got %.3f allocations per element, want at most 1 (the URI) and a little map growth", allocs)
	}
}
