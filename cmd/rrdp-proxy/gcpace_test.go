package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/conf"
)

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name           string
		live, headroom int64
		want           int
	}{
		{"no live heap measured", 0, 128 * mib, gcPercentMax},
		{"small heap: a tenth", 100 * mib, 128 * mib, gcPercentMax},
		{"1 GiB: a tenth", 1024 * mib, 128 * mib, gcPercentMax},
		{"1.5 GiB: the headroom", 1536 * mib, 128 * mib, 8},
		{"large's served state", 2200 * mib, 128 * mib, 5},
		{"very large heap: a twentieth", 40 << 30, 128 * mib, gcPercentMin},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := gcPercent(c.live, c.headroom); got != c.want {
				t.Errorf("gcPercent(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
			}
		})
	}
}

func TestChooseGCHeadroom(t *testing.T) {
	for _, c := range []struct {
		setting, gogc string
		want          int64
		bad           bool
	}{
		{setting: "auto", want: autoGCHeadroom},
		{setting: "auto", gogc: "50", want: 0}, // the environment's GOGC is kept
		{setting: "off", want: 0},
		{setting: "512MiB", gogc: "50", want: 512 << 20},
		{setting: "1MiB", bad: true},
		{setting: "lots", bad: true},
	} {
		env := func(k string) string {
			if k == "GOGC" {
				return c.gogc
			}
			return ""
		}
		got, err := chooseGCHeadroom(&conf.Server{GCHeadroom: c.setting}, env)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("gc_headroom %q, GOGC %q: got %d, %v; want %d, error %v", c.setting, c.gogc, got, err, c.want, c.bad)
		}
	}
}

// TestGCPacerApplied: the pacer sets the runtime's GOGC from the live heap
// it reads, and off restores GOGC as the process started with it.
func TestGCPacerApplied(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	p := &gcPacer{log: slog.New(slog.DiscardHandler)}
	// A live heap of 256 MiB, kept until the end: with 16 MiB of headroom,
	// GOGC 6 (5 or 6 with the test's own heap).
	keep := make([][]byte, 256)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	p.set(16 << 20)
	got := debug.SetGCPercent(-1)
	debug.SetGCPercent(got)
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if want := gcPercent(int64(s[0].Value.Uint64()), 16<<20); got != want || got > 6 || got < 5 {
		t.Errorf("GOGC after the pacer: %d, want %d (about 6 for a live heap of %d bytes)", got, want, s[0].Value.Uint64())
	}
	p.set(0)
	if got := debug.SetGCPercent(startGCPercent); got != startGCPercent {
		t.Errorf("GOGC after off: %d, want the start's %d", got, startGCPercent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != context.Canceled {
		t.Errorf("Run after its context ended: %v", err)
	}
	runtime.KeepAlive(keep)
}

func TestPacedGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name                 string
		live, headroom, peak int64
		want                 int
	}{
		{"no peak above the live heap: as gcPercent", 100 * mib, 128 * mib, 100 * mib, gcPercentMax},
		{"no peak measured", 100 * mib, 128 * mib, 0, gcPercentMax},
		// paper-1ca between serials: 65 MB live, 90 MB at a serial's peak.
		// The goal at the peak is 99 MB (90 and its tenth): 52% of 65.
		{"between serials: the goal the peak had", 65 * mib, 128 * mib, 90 * mib, 52},
		// 105 and its tenth, 115.5, is 15.5% above 100.
		{"a peak just above: the goal the peak had", 100 * mib, 128 * mib, 105 * mib, 15},
		{"at the peak: gcPercent", 90 * mib, 128 * mib, 90 * mib, gcPercentMax},
		{"a peak beyond the headroom: the headroom", 100 * mib, 128 * mib, 1024 * mib, 128},
		{"large: the headroom bounds the floor", 2000 * mib, 128 * mib, 2400 * mib, 6},
		{"pacer off", 65 * mib, 0, 90 * mib, gcPercentMax},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := pacedGCPercent(c.live, c.headroom, c.peak); got != c.want {
				t.Errorf("pacedGCPercent(%d, %d, %d) = %d, want %d", c.live, c.headroom, c.peak, got, c.want)
			}
		})
	}
}

// TestPeaks: a peak of the live heap counts for peakWindow, then is
// forgotten; a later, smaller one does not hide it.
func TestPeaks(t *testing.T) {
	var w peaks
	t0 := time.Unix(1_800_000_000, 0)
	w.add(t0, 90)
	w.add(t0.Add(time.Second), 65)
	for _, c := range []struct {
		after time.Duration
		want  int64
	}{
		{0, 90},
		{time.Second, 90},
		{peakWindow - peakWindow/peakSlots, 90},
		{peakWindow + peakWindow/peakSlots, 0},
	} {
		if got := w.peak(t0.Add(c.after)); got != c.want {
			t.Errorf("peak %v after: %d, want %d", c.after, got, c.want)
		}
	}
	// A slot reused a window later starts again from nothing.
	w.add(t0.Add(peakWindow), 70)
	if got := w.peak(t0.Add(peakWindow)); got != 70 {
		t.Errorf("peak after the slot was reused: %d, want 70", got)
	}
	// A live heap that fell: the pacer keeps the goal at the peak.
	p := &gcPacer{headroom: 128 << 20, log: slog.New(slog.DiscardHandler)}
	p.seen.add(time.Now(), 1<<40)
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	if got := p.pace(time.Now()); got <= gcPercentMax {
		t.Errorf("GOGC after a peak far above the live heap: %d, want more than %d", got, gcPercentMax)
	}
}

// TestGCPacerAfterGC: the pacer paces after each collection (afterGC, as
// Run arms it), with no ticker: three collections, three paces, the
// cleanup re-arming itself; none once its context ended.
func TestGCPacerAfterGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	p := &gcPacer{headroom: 128 << 20, log: slog.New(slog.DiscardHandler), paced: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	p.afterGC(ctx)
	for range 3 {
		runtime.GC()
		<-p.paced
	}
	cancel()
	runtime.GC()
	runtime.GC()
	select {
	case <-p.paced:
		t.Error("paced after a collection once the context ended")
	default:
	}
}
