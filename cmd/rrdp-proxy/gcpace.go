package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/conf"
)

// Go's collector runs when the heap has grown by GOGC percent (100) above
// what was live after the last collection. A node's live heap is mostly
// the served state, byte slices the collector does not scan, so a
// collection costs little more for 2 GB of them than for 200 MB; but the
// doubling lets the process grow to twice the served state between
// collections, whatever a serial needs: on `large` a node's RSS drifted to
// about 2× its 2 GB of served bytes over a few serials. The pacer keeps
// the growth to a number of bytes instead of a share: it sets GOGC from the
// live heap (runtime/metrics) every second, so that the heap goal
// is the live heap plus server.gc_headroom, within GOGC gcPercentMin (a
// very large heap is collected at least every twentieth of its size) and
// gcPercentMax (a small heap every tenth). Unlike a
// memory limit, it never makes the collector run without pause when a
// serial needs more than expected: the goal follows the live heap.
//
// The goal does not fall below the goal the peak of the live heap over
// the last peakWindow had either (but never more than the headroom above
// the live heap). A serial makes its new segments before the old ones are freed,
// so the live heap rises by what the serial changes and falls back once
// it is served: paper-1ca's from 65 to 90 MB every second. A goal that
// followed it down let the runtime return the pages to the system
// between serials and fault them in again at the next one, and collect
// four or five times a serial: RSS went between 107 and 135 MiB in the
// soak; with the floor, 122 to 135 MiB (docs/bench/state.md, "The heap
// goal held at the serials' peak"). The heap keeps the room its serials
// use, at their peak, which is the memory a node must be given anyway.
// peakWindow is five minutes,
// so that a repository publishing a serial a minute (RIPE NCC, ARIN) keeps
// its room between serials, and a state that shrank for good (a
// repository removed) gives its memory back five minutes later.

// gcPercentMin and gcPercentMax bound the GOGC the pacer sets. The upper
// bound keeps a small heap from swinging by most of its size between
// collections: with 100, a node serving paper-1ca (55 MiB) went between
// 179 and 231 MiB of RSS in the soak (docs/bench/state.md); its
// collections are cheap, the heap being small.
const (
	gcPercentMin = 5
	gcPercentMax = 10
)

// peakWindow is how long the pacer remembers a peak of the live heap,
// in peakSlots slots of peakWindow/peakSlots each.
const (
	peakWindow = 5 * time.Minute
	peakSlots  = 30
)

// autoGCHeadroom is gc_headroom's auto: the growth allowed above the live
// heap. Measured on large (docs/bench/state.md, "The collector's
// headroom"): against 256 MiB with GOGC at least 10, a serial of 10,000
// changed objects peaked at 1.24 instead of 1.33 times the served bytes,
// for a CPU within the bench's noise.
const autoGCHeadroom = 128 << 20

// startGCPercent is GOGC as the runtime took it at start (100 without the
// variable), restored when the pacer is off.
var startGCPercent = func() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}()

// gcPercent returns the GOGC that makes the heap goal live + headroom,
// within [gcPercentMin, gcPercentMax].
func gcPercent(live, headroom int64) int {
	if live <= 0 || headroom <= 0 {
		return gcPercentMax
	}
	p := 100 * headroom / live
	return int(min(max(p, gcPercentMin), gcPercentMax))
}

// pacedGCPercent is gcPercent with the floor: the GOGC that makes the
// heap goal at least the goal the peak had (peak plus gcPercent of it),
// peak being the largest live heap of the last peakWindow, but never
// more than live+headroom. A floor at the peak alone left the goal
// going between the peak (between serials) and the peak plus its tenth
// (at a serial's peak), and RSS with it: 122 to 135 MiB in the
// paper-1ca soak.
func pacedGCPercent(live, headroom, peak int64) int {
	p := gcPercent(live, headroom)
	if live <= 0 || headroom <= 0 || peak <= live {
		return p
	}
	floor := min(peak+peak*int64(gcPercent(peak, headroom))/100, live+headroom)
	return max(p, int(100*(floor-live)/live))
}

// peaks is the largest live heap seen in each slot of peakWindow, by
// slot number (time since the Unix epoch over the slot's length).
type peaks struct {
	slot [peakSlots]int64 // the slot number each entry was written in
	max  [peakSlots]int64
}

func slotOf(now time.Time) int64 {
	return now.UnixNano() / int64(peakWindow/peakSlots)
}

// add records a live heap of n bytes at now.
func (w *peaks) add(now time.Time, n int64) {
	s := slotOf(now)
	i := s % peakSlots
	if w.slot[i] != s {
		w.slot[i], w.max[i] = s, 0
	}
	w.max[i] = max(w.max[i], n)
}

// peak returns the largest live heap recorded within peakWindow of now.
func (w *peaks) peak(now time.Time) int64 {
	s := slotOf(now)
	var m int64
	for i := range w.slot {
		if s-w.slot[i] < peakSlots {
			m = max(m, w.max[i])
		}
	}
	return m
}

// gcPacer sets GOGC from the live heap every second (a collection in
// between changes the live heap; the goal in force is computed from it at
// the next one). Headroom 0 leaves GOGC as the environment set it.
type gcPacer struct {
	mu       sync.Mutex // one of set and pace at a time (reload and Run)
	headroom int64
	last     int // the GOGC set last, 0 before
	seen     peaks
	log      *slog.Logger
	// paced, if not nil, is sent to (without waiting) after each pace
	// (tests).
	paced chan struct{}
}

// chooseGCHeadroom decides the pacer's headroom from server.gc_headroom:
// auto is autoGCHeadroom unless GOGC is set in the environment (the
// operator's word, kept); off is 0.
func chooseGCHeadroom(s *conf.Server, env func(string) string) (int64, error) {
	n, auto, err := s.CollectorHeadroom()
	if err != nil {
		return 0, fmt.Errorf("server.gc_headroom: %w", err)
	}
	switch {
	case !auto:
		return n, nil
	case env("GOGC") != "":
		return 0, nil
	}
	return autoGCHeadroom, nil
}

// apply takes server.gc_headroom (start and reload).
func (p *gcPacer) apply(s *conf.Server) error {
	h, err := chooseGCHeadroom(s, os.Getenv)
	if err != nil {
		return err
	}
	p.set(h)
	return nil
}

// set applies a new headroom.
func (p *gcPacer) set(headroom int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.headroom == headroom {
		return
	}
	p.headroom = headroom
	if headroom == 0 {
		p.last = 0
		debug.SetGCPercent(startGCPercent)
		p.log.Debug("collector pacing: GOGC as set", "gogc", startGCPercent)
		return
	}
	p.log.Info("collector pacing: heap goal the live heap plus a headroom", "headroom", conf.Size(headroom).String())
	p.paceLocked(time.Now())
}

// pace sets GOGC for the live heap at now.
func (p *gcPacer) pace(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paceLocked(now)
}

func (p *gcPacer) paceLocked(now time.Time) int {
	h := p.headroom
	if h == 0 {
		return startGCPercent
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var live int64
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = int64(s[0].Value.Uint64())
	}
	p.seen.add(now, live)
	pct := pacedGCPercent(live, h, p.seen.peak(now))
	if p.paced != nil {
		select {
		case p.paced <- struct{}{}:
		default:
		}
	}
	if p.last != pct {
		p.last = pct
		debug.SetGCPercent(pct)
	}
	return pct
}

// Run paces the collector after every collection and every second until
// ctx ends.
//
// After every collection: GOGC is relative to the live heap the last
// collection left, so a GOGC set from the live heap a second old gives
// another goal than the floor once a collection in between changed the
// live heap (a serial's peak, then its trough), and the runtime returned
// the pages of the difference to the system at once. A cleanup on an
// object dropped at once runs after the collection that frees it; it
// paces and arms the next.
func (p *gcPacer) Run(ctx context.Context) error {
	p.afterGC(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-t.C:
			p.pace(now)
		}
	}
}

// afterGC makes the runtime pace p after the next collection, and again
// after each one, until ctx ends.
func (p *gcPacer) afterGC(ctx context.Context) {
	// Large enough not to be a tiny allocation, whose cleanup may never run.
	sentinel := new([64]byte)
	runtime.AddCleanup(sentinel, func(ctx context.Context) {
		if ctx.Err() != nil {
			return
		}
		p.pace(time.Now())
		p.afterGC(ctx)
	}, ctx)
}
