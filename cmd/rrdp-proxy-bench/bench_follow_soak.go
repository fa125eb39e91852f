package main

import (
	"context"
	"fmt"
	"time"
)

// soakResult is one binary through the soak.
type soakResult struct {
	bin               string
	every             time.Duration
	changes           int
	samples           []soakSample
	published, served uint64 // last serials at the end
	catchUp           time.Duration
	prepMax           time.Duration
	stopped           string // why the soak ended early
	ready, notif      time.Duration
	restartErr        string
	restartLoad       string
	stateEnd          int64
}

// soakSample is the child at one moment of the soak.
type soakSample struct {
	at                time.Duration
	rss, state        int64
	pinned            int64
	published, served uint64
	load              string
	// The disk tier's cap, from /metrics (with --disk).
	used, current, evictions, over float64
}

// The series of the disk tier's cap a soak samples.
var (
	seriesUsed      = `rrdp_proxy_cache_tier_used_bytes{tier="tier1"}`
	seriesCurrent   = `rrdp_proxy_cache_tier_current_bytes{tier="tier1"}`
	seriesEvictions = `rrdp_proxy_cache_tier_evictions_total{tier="tier1"}`
	seriesOver      = `rrdp_proxy_cache_tier_over_max{tier="tier1"}`
)

// soakRun publishes a serial every o.soakEvery for o.soak, sampling the
// child every 5 s, then restarts it with the origin down.
func (e *followEnv) soakRun(ctx context.Context, b followBin, src string) (*soakResult, error) {
	s, err := e.setup(b, src)
	if err != nil {
		return nil, err
	}
	defer s.origin.Close()
	res := &soakResult{bin: b.name, every: e.o.soakEvery, changes: e.o.soakChanges}
	c, err := e.start(b, s)
	if err != nil {
		return nil, err
	}
	defer func() { c.stop() }()
	if _, err := c.waitSerial(ctx, s.repo.serial, e.o.syncTimeout); err != nil {
		res.stopped = fmt.Sprintf("first sync: %v", err)
		return res, nil
	}
	fmt.Fprintf(e.progress, "bench follow: %s: soak for %v\n", b.name, e.o.soak)
	start := time.Now()
	sample := func() {
		smp := soakSample{at: time.Since(start), state: dirSize(s.state), published: s.repo.serial, load: loadAverage()}
		smp.rss, _, _ = c.memory()
		if n, err := c.notification(ctx); err == nil {
			smp.served = n.Serial
		}
		if js, err := c.status(ctx); err == nil {
			smp.pinned = js.Cache.PinnedBytes
		}
		if e.o.disk != "" {
			if m, err := c.metrics(ctx, seriesUsed, seriesCurrent, seriesEvictions, seriesOver); err == nil {
				smp.used, smp.current, smp.evictions, smp.over = m[seriesUsed], m[seriesCurrent], m[seriesEvictions], m[seriesOver]
			}
		}
		res.samples = append(res.samples, smp)
		if len(res.samples)%12 == 1 {
			fmt.Fprintf(e.progress, "bench follow: %s: soak %v: RSS %s, state %s, serial %d served %d\n", b.name,
				smp.at.Round(time.Second), mib(smp.rss), mib(smp.state), smp.published, smp.served)
		}
	}
	sample()
	next, nextSample := start, start.Add(5*time.Second)
	for time.Since(start) < e.o.soak {
		if err := c.alive(); err != nil {
			res.stopped = fmt.Sprintf("after %v: %v", time.Since(start).Round(time.Second), err)
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if now := time.Now(); now.After(next) {
			d, err := timed(func() error { return s.repo.advance(e.o.soakChanges) })
			if err != nil {
				return nil, fmt.Errorf("bench follow: soak: %w", err)
			}
			res.prepMax = max(res.prepMax, d)
			s.origin.publish(s.repo.notification(), s.repo.serial)
			next = next.Add(e.o.soakEvery)
		}
		if time.Now().After(nextSample) {
			sample()
			nextSample = nextSample.Add(5 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.published = s.repo.serial
	if c.alive() != nil {
		return res, nil
	}
	end := time.Now()
	if _, err := c.waitSerial(ctx, s.repo.serial, time.Minute); err != nil {
		res.stopped = fmt.Sprintf("catching up at the end: %v", err)
	} else {
		res.catchUp = time.Since(end)
	}
	sample()
	res.served = res.samples[len(res.samples)-1].served

	// The restart, with the origin down.
	if err := c.stop(); err != nil {
		res.restartErr = err.Error()
		return res, nil
	}
	s.origin.Close()
	res.stateEnd = dirSize(s.state)
	res.restartLoad = loadAverage()
	t0 := time.Now()
	if c, err = e.start(b, s); err != nil {
		return nil, err
	}
	readyAt, err := c.ready(ctx, time.Minute)
	if err != nil {
		res.restartErr = err.Error()
		return res, nil
	}
	res.ready = readyAt.Sub(t0)
	servedAt, err := c.waitSerial(ctx, res.served, time.Minute)
	if err != nil {
		res.restartErr = err.Error()
		return res, nil
	}
	res.notif = servedAt.Sub(t0)
	return res, nil
}
