package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"

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
