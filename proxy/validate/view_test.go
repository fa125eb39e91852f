package validate_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// viewProfile has enough objects for a composite snapshot of several
// chunks (128 objects each on average).
var viewProfile = repotest.Profile{Intermediates: 2, Members: 24, ROAs: 400, EEKeys: 2}

// TestViews follows a repository whose snapshots are composite, as a big
// one's are: the Validator's objects are views into the .bin segments
// the cache holds, not copies; the VRPs are the generator's at every
// serial; a part whose bytes are not its list's (Open corrupting one) is
// refused with an error naming the state, and no state is kept; a state
// read from deltas copies only what they publish and
// counts the bytes it keeps beyond the current segments; past the stale
// limit the next serial is read from its snapshot, as views again.
func TestViews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g := newRig(t, ctx, rigConfig{Profile: viewProfile, FragmentMin: 1, Validate: validate.Config{Rules: gateRules}})
	runs := 0
	sync := func(what string) {
		t.Helper()
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		runs++
		g.waitRuns(runs)
		if d := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), rpki.SortVRPs(g.repo.VRPs()), 10); d != "" {
			t.Fatalf("%s: /vrps.json differs from the generator's VRPs:\n%s", what, d)
		}
	}
	// segments returns the .bin segments of the served snapshot.
	segments := func(what string) ([][32]byte, [][]byte) {
		t.Helper()
		h := g.cache.Head("repo")
		for i := range h.Files {
			f := &h.Files[i]
			if f.Kind != rrdpxml.KindSnapshot || f.Format != irpki.FormatBin || f.Gzip || f.Serial != h.Serial {
				continue
			}
			if !f.Composite() {
				t.Fatalf("%s: %s is not composite", what, f.Path)
			}
			parts, err := cache.FileParts(ctx, f, g.cache.Blob)
			if err != nil {
				t.Fatal(err)
			}
			var sums [][32]byte
			var blobs [][]byte
			for _, p := range parts {
				if p.Sum == ([32]byte{}) {
					continue
				}
				b, err := g.cache.Blob(ctx, p.Sum)
				if err != nil {
					t.Fatal(err)
				}
				sums, blobs = append(sums, p.Sum), append(blobs, b)
			}
			if len(blobs) < 3 {
				t.Fatalf("%s: %d segments, want a few", what, len(blobs))
			}
			return sums, blobs
		}
		t.Fatalf("%s: no snapshot.bin served", what)
		return nil, nil
	}
	// within reports whether b lies in one of blobs' memory.
	within := func(b []byte, blobs [][]byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		for _, s := range blobs {
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
			if p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(s)) {
				return true
			}
		}
		return false
	}
	allViews := func(what string) {
		t.Helper()
		sums, blobs := segments(what)
		objs, views, copies, stale := validate.StateOf(g.v, "repo", sums)
		// The objects of a group taken over from the state before (its
		// pin and its segments unchanged) are views read then, counted
		// by neither: every object's bytes are checked to lie within the
		// cache's segments below.
		if copies != 0 || views == 0 || views > len(objs) || stale != 0 {
			t.Errorf("%s: %d views, %d copies, %d stale bytes for %d objects; want views, no copy, nothing stale", what, views, copies, stale, len(objs))
		}
		n := 0
		for uri, b := range objs {
			if !within(b, blobs) {
				n++
				if n <= 3 {
					t.Errorf("%s: %s is not within the cache's segments", what, uri)
				}
			}
		}
		if n > 0 {
			t.Errorf("%s: %d of %d objects outside the cache's segments", what, n, len(objs))
		}
	}

	sync("serial 1")
	allViews("serial 1")

	// A part whose bytes are not those its part list names (a corrupt
	// tier, a bug in Open): the state is not read, and the Validator says
	// why.
	sums, _ := segments("serial 1")
	bad := sums[len(sums)/2]
	var log syncBuffer
	broken, err := validate.New(validate.Config{TALs: g.vc.TALs, Logger: slog.New(slog.NewTextHandler(&log, nil)), Open: func(ctx context.Context, f follow.File) ([]byte, error) {
		b, err := g.vc.Open(ctx, f)
		if err == nil && f.Sum == bad {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0xff
		}
		return b, err
	}})
	if err != nil {
		t.Fatal(err)
	}
	broken.Seed("repo", "repo", g.cache.Head("repo"))
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); broken.Run(bctx) }()
	for validate.OpenErrors(broken) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("a corrupt part: no read error counted")
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	<-done
	if objs, _, _, _ := validate.StateOf(broken, "repo", nil); objs != nil {
		t.Errorf("a corrupt part: a state of %d objects was read", len(objs))
	}
	if l := log.String(); !strings.Contains(l, "cannot read a state") || !strings.Contains(l, "load repo serial 1") {
		t.Errorf("a corrupt part: the log does not say which state could not be read:\n%s", l)
	}

	now := time.Now().UTC().Truncate(time.Second)
	if err := g.repo.Advance(now.Add(time.Minute), 3); err != nil {
		t.Fatal(err)
	}
	g.publish()
	sync("serial 4")
	if n := validate.DeltaLoads(g.v); n != 1 {
		t.Fatalf("serial 4: %d states read from deltas, want 1", n)
	}
	sums, _ = segments("serial 4")
	objs, views, copies, stale := validate.StateOf(g.v, "repo", sums)
	if views != 0 || copies == 0 || copies >= len(objs) || stale == 0 {
		t.Errorf("serial 4 (deltas): %d views and %d copies read, %d stale bytes, %d objects; want a few copies, no views, some stale bytes", views, copies, stale, len(objs))
	}

	// Any stale byte is too many now: the next serial's deltas are read,
	// found stale, and its snapshot read instead.
	validate.SetStaleLimit(g.v, 0)
	if err := g.repo.Advance(now.Add(2*time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	g.publish()
	sync("serial 5")
	if n := validate.DeltaLoads(g.v); n != 1 {
		t.Errorf("serial 5: %d states read from deltas, want still 1 (the snapshot read)", n)
	}
	allViews("serial 5")
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
