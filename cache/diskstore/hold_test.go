package diskstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

// TestCapHeld: a retained snapshot held for a response (Hold) and then
// dropped by the cap keeps every blob readable, through later passes and
// a GC, while new holds of it fail and the directory keeps to its cap by
// dropping other files; once released, the next pass removes the blobs
// no head needs.
func TestCapHeld(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	// Room for the current state and about four retained serials.
	const max = (nParts*partSize + deltaSize + 1000) + 4*(partSize+deltaSize+600)
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: max, Grace: time.Nanosecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 7, now)
	p.next(ctx, s)
	p.next(ctx, s)
	f := p.retained[0] // serial 1's snapshot, the oldest retained file
	if f.Index == ([32]byte{}) {
		t.Fatal("serial 1's snapshot is not composite")
	}
	list, err := s.GetBlob(ctx, f.Index)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := cache.DecodeParts(list)
	if err != nil {
		t.Fatal(err)
	}
	sums := [][32]byte{f.Index}
	for _, pt := range parts {
		sums = append(sums, pt.Sum)
	}
	release, err := s.Hold(ctx, f.Key(), sums)
	if err != nil {
		t.Fatalf("Hold serial 1's snapshot: %v", err)
	}
	for i := 0; !s.Dropped(f.Key()); i++ {
		if i == 20 {
			t.Fatal("serial 1's snapshot not dropped after 20 serials")
		}
		now = now.Add(time.Minute)
		p.next(ctx, s)
		if u := s.Used(); u > max {
			t.Fatalf("serial %d: Used %d, over the cap %d", p.serial, u, max)
		}
	}
	// Two more passes and a GC: none removes a held blob.
	for range 2 {
		now = now.Add(time.Minute)
		p.next(ctx, s)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	read := func() ([]byte, error) { return cache.ReadFile(ctx, &f, s.GetBlob) }
	if b, err := read(); err != nil || sha256.Sum256(b) != f.Sum {
		t.Fatalf("held and dropped: read serial 1's snapshot: %v; want its bytes", err)
	}
	if st := s.Cap(); st.Held == 0 || st.OverMax || st.Used > max {
		t.Errorf("Cap while held: got %+v, want Held, not over, Used under %d", st, max)
	}
	if _, err := s.Hold(ctx, f.Key(), sums); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Hold of the dropped file again: got %v, want fs.ErrNotExist", err)
	}

	// The blobs of serial 1 that no stored head needs, which the cap
	// removes once they are released.
	heads, err := s.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	needed := make(map[[32]byte]bool)
	for _, sum := range cache.NeededLax(ctx, heads[p.repo], now, s.GetBlob) {
		needed[sum] = true
	}
	var only [][32]byte
	for _, sum := range sums {
		if !needed[sum] {
			only = append(only, sum)
		}
	}
	if len(only) == 0 {
		t.Fatal("every blob of serial 1's snapshot is still needed: the test shows nothing")
	}
	release()
	release() // a second call does nothing
	now = now.Add(time.Minute)
	p.next(ctx, s)
	for _, sum := range only {
		if _, err := s.GetBlob(ctx, sum); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("blob %x of the released file: got %v, want removed", sum[:8], err)
		}
	}
	if st := s.Cap(); st.Held != 0 || st.Used > max {
		t.Errorf("Cap after the release: got %+v, want nothing held, Used under %d", st, max)
	}
	checkLoadable(t, s)
}

// TestCapHeldOverCap: when what responses hold and the current state
// exceed the cap, the directory stays above it without a pass per put
// and without saying the current state alone is over it; the first pass
// after the release brings it under.
func TestCapHeldOverCap(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	// Room for the current state and one and a half retained serials.
	const max = (nParts*partSize + deltaSize + 1000) + 3*(partSize+deltaSize+600)/2
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: max, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 9, now)
	p.next(ctx, s)
	p.next(ctx, s)
	f := p.retained[0]
	list, err := s.GetBlob(ctx, f.Index)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := cache.DecodeParts(list)
	if err != nil {
		t.Fatal(err)
	}
	sums := [][32]byte{f.Index}
	for _, pt := range parts {
		sums = append(sums, pt.Sum)
	}
	release, err := s.Hold(ctx, f.Key(), sums)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // each replaces a part serial 1's snapshot holds
		now = now.Add(time.Minute)
		p.next(ctx, s)
	}
	st := s.Cap()
	if st.Used <= max || !s.led.waitsForRelease() || st.OverMax || st.OverMaxCount != 0 || !s.Dropped(f.Key()) {
		t.Fatalf("held above the cap: Cap %+v, waits for a release %v, dropped %v; want Used over %d, waiting, not OverMax",
			st, s.led.waitsForRelease(), s.Dropped(f.Key()), max)
	}
	if b, err := cache.ReadFile(ctx, &f, s.GetBlob); err != nil || sha256.Sum256(b) != f.Sum {
		t.Fatalf("the held file: %v; want its bytes", err)
	}
	release()
	now = now.Add(time.Minute)
	p.next(ctx, s)
	if st := s.Cap(); st.Used > max || st.Held != 0 {
		t.Errorf("after the release and a serial: Cap %+v, want Used under %d, nothing held", st, max)
	}
	checkLoadable(t, s)
}

// TestReleaseDuringPass: a lease that ends while a pass runs (after it
// read the leases, before it decided it waits for one to end) is not
// lost: the pass does not then mark the store as waiting for a release,
// which would skip every pass until the next head.
func TestReleaseDuringPass(t *testing.T) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	s, err := Open(Config{Dir: t.TempDir(), MaxBytes: 1 << 30, Grace: time.Nanosecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p := newSerials(t, "https://a.example/notification.xml", 7, now)
	p.next(ctx, s)
	p.next(ctx, s)
	f := p.retained[0]
	release, err := s.Hold(ctx, f.Key(), [][32]byte{f.Index})
	if err != nil {
		t.Fatal(err)
	}
	l := &s.led
	_, releases := l.leased() // a pass reads the leases
	release()                 // a response ends meanwhile
	l.waitRelease(releases)   // the pass decides
	if l.waitsForRelease() {
		t.Error("a lease ended during the pass, yet the store waits for a release")
	}
	_, releases = l.leased()
	l.waitRelease(releases)
	if !l.waitsForRelease() {
		t.Error("no lease ended during the pass: the store should wait for one")
	}
}
