package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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

// gcPercentMin and gcPercentMax bound the GOGC the pacer sets. The upper
// bound keeps a small heap from swinging by most of its size between
// collections: with 100, a node serving paper-1ca (55 MiB) went between
// 179 and 231 MiB of RSS in the soak (docs/bench/state.md); its
// collections are cheap, the heap being small.
const (
	gcPercentMin = 5
	gcPercentMax = 10
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

// gcPacer sets GOGC from the live heap every second (a collection in
// between changes the live heap; the goal in force is computed from it at
// the next one). Headroom 0 leaves GOGC as the environment set it.
type gcPacer struct {
	mu       sync.Mutex // one of set and pace at a time (reload and Run)
	headroom int64
	last     int // the GOGC set last, 0 before
	log      *slog.Logger
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
	p.paceLocked()
}

// pace sets GOGC for the live heap now.
func (p *gcPacer) pace() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paceLocked()
}

func (p *gcPacer) paceLocked() int {
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
	pct := gcPercent(live, h)
	if p.last != pct {
		p.last = pct
		debug.SetGCPercent(pct)
	}
	return pct
}

// Run paces the collector every second until ctx ends.
func (p *gcPacer) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			p.pace()
		}
	}
}
