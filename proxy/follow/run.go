package follow

import (
	"context"
	"errors"
	"time"
)

// Run polls until ctx ends, waiting Interval (with jitter) between syncs
// and backing off exponentially after errors. It returns ctx's error.
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
		timer.Reset(f.wait(failures))
	}
}

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
