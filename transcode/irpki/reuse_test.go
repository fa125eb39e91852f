package irpki_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// collect reads a .bin into an object set, with errors instead of t.Fatal
// so that goroutines may call it.
func collect(b []byte) (objectSet, error) {
	rd := irpki.NewReader(bytes.NewReader(b), 0, rrdpxml.Limits{})
	set := objectSet{}
	for {
		g, err := rd.Next()
		if err == io.EOF {
			return set, nil
		}
		if err != nil {
			return nil, err
		}
		for _, e := range g.Entries {
			addObject(set, g.Repo+e.Name, false, e.HasHash, e.Hash, e.Content)
		}
		for _, e := range g.Withdrawn {
			addObject(set, g.Repo+e.Name, true, e.HasHash, e.Hash, nil)
		}
	}
}

// A finished Reader hands its buffers to the next one: what a Reader
// delivers must not depend on the Readers that ran before or beside it.
func TestReaderReuse(t *testing.T) {
	specs := []irpkitest.Spec{
		{Seed: 11, Objects: 300, Dirs: 1},
		{Seed: 12, Objects: 300, Dirs: 60},
		{Seed: 13, Objects: 40, Dirs: 1, MinSize: 100, MaxSize: 200},
	}
	var bins [][]byte
	var want []objectSet
	for _, s := range specs {
		x := synthSnapshot(t, s)
		_, w := xmlObjects(t, x)
		b, _ := toBin(t, x)
		bins, want = append(bins, b), append(want, w)
	}
	d := synthDelta(t, irpkitest.Spec{Seed: 15, Objects: 200, Dirs: 3})
	_, dw := xmlObjects(t, d)
	db, _ := toBin(t, d)
	bins, want = append(bins, db), append(want, dw)

	check := func(i int) error {
		got, err := collect(bins[i])
		if err != nil {
			return fmt.Errorf("file %d: %w", i, err)
		}
		if !maps.Equal(got, want[i]) {
			return fmt.Errorf("file %d: got %d objects that differ from the %d of its XML", i, len(got), len(want[i]))
		}
		return nil
	}
	for round := range 2 {
		for i := range bins {
			if err := check((i + round) % len(bins)); err != nil {
				t.Fatal(err)
			}
		}
	}
	errs := make(chan error, 4*10)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 10 {
				if err := check((g + k) % len(bins)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Reading one big publication point after another reuses the group
// buffer: a reader allocates about its names, not the bytes of the file
// (it took over five times the file when the buffer grew 1 MiB at a time).
func TestReaderReusesBuffers(t *testing.T) {
	bin, _ := toBin(t, synthSnapshot(t, irpkitest.Spec{Seed: 14, Objects: 1000, Dirs: 1}))
	if err := readAll(bin, 0, rrdpxml.Limits{}); err != nil {
		t.Fatal(err)
	}
	const runs = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if err := readAll(bin, 0, rrdpxml.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > uint64(len(bin)/2) {
		t.Errorf("allocated %d bytes a read of a %d-byte file, want under %d", per, len(bin), len(bin)/2)
	}
}

// A group that claims 3 GB and brings 1 MB makes the reader allocate a few
// times what arrived, not what was claimed.
func TestReaderGrowsWithArrivedBytes(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, irpkitest.Session(1))
	b = protowire.AppendTag(b, 43, protowire.BytesType)
	b = protowire.AppendVarint(b, 3<<30)
	b = append(b, make([]byte, 1<<20)...)
	runtime.GC() // twice: empty the pool of buffers other tests left
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := readAll(b, 0, rrdpxml.Limits{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, irpki.ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d MB for a file of %d MB", grew>>20, len(b)>>20)
	}
}
