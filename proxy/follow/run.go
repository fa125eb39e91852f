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
// Polls keep their rate, whatever a sync takes up to most of the
// interval (pause). An interval counted from the end of each sync made
// the period the interval plus the sync: a follower of a repository
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
// the interval, but at least minPause of it, or after an error the whole
// back-off.
func (f *Follower) pause(failures int, took time.Duration) time.Duration {
	d := f.wait(failures)
	if failures > 0 {
		return d
	}
	return max(d-took, d/minPause)
}

// minPause: a poll that took longer than the interval less 1/minPause of
// it is followed by a pause of 1/minPause of the interval, not by the next
// poll at once: a repository whose syncs outgrow the interval is polled a
// little less often than asked rather than without a pause, which would
// keep a core and the origin busy.
const minPause = 4

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
