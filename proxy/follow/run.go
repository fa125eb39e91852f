package follow

import (
	"context"
	"errors"
	"time"
)

// Run polls until ctx ends, every Interval (with jitter) from the start
// of one poll to the start of the next, and backing off exponentially
// after errors (from the end of the failed one). It returns ctx's error.
//
// Polls keep their rate whenever a sync fits in the interval (pause).
// An interval counted from the end of each sync made the period the
// interval plus the sync: a follower of a repository
// publishing at the interval fell behind by a sync's time each poll, and
// caught up with a sync over two deltas every few polls (in the
// paper-1ca soak, 29 of 211 syncs, each peaking 10 MB higher than a sync
// of one delta), and saw each serial later than the interval promises.
func (f *Follower) Run(ctx context.Context) error {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		start := time.Now()
		_, err := f.Sync(ctx)
		if f.cfg.OnSync != nil && ctx.Err() == nil {
			f.cfg.OnSync(time.Since(start), err)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrHeld):
			// Held by the store: no back-off, see ErrHeld.
		case err != nil:
			failures++
		default:
			failures = 0
		}
		timer.Reset(f.pause(failures, time.Since(start)))
	}
}

// pause returns the time from the end of a poll that took took to the
// start of the next one, after failures consecutive errors: the rest of
// the interval, or after an error the whole back-off.
//
// A poll that overran the interval is followed by a quarter of it
// (overrunShare), not by the next poll at once: a repository whose syncs
// outgrow the interval is polled a little less often than asked rather
// than back to back, which would keep a core and the origin busy. Only an
// overrun gets the floor: a sync within the interval keeps the rate (a
// floor below it, max(d-took, d/4), stretched the period of every sync
// over 3/4 of the interval, the drift this rate removes).
func (f *Follower) pause(failures int, took time.Duration) time.Duration {
	d := f.wait(failures)
	switch {
	case failures > 0:
		return d
	case took >= d:
		return d / overrunShare
	default:
		return d - took
	}
}

// overrunShare: a poll that overran the interval is followed by
// 1/overrunShare of it.
const overrunShare = 4

// wait returns the time to the next poll after failures consecutive
// errors.
func (f *Follower) wait(failures int) time.Duration {
	d := f.cfg.Interval
	for i := 0; i < failures && d < f.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if failures > 0 {
		d = min(d, f.cfg.MaxBackoff)
	}
	j := f.cfg.Jitter * (2*f.rnd.Float64() - 1)
	return time.Duration(float64(d) * (1 + j))
}
