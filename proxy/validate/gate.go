package validate

import (
	"context"
	"fmt"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

// gate judges the state of h before it reaches the store: the candidate
// (the state served with repo's replaced by h's) and the state served are
// validated at the same instant, and a candidate that breaks a rule is
// held. A state that cannot be read or validated is published (fail
// open): the gate judges serials, it must not stop a node on its own
// failure; the error is logged, counted and shown.
func (v *Validator) gate(ctx context.Context, s *store, repo string, h *follow.Head) error {
	id, idErr := headID(h)
	v.runMu.Lock()
	defer v.runMu.Unlock()
	v.mu.Lock()
	if hd := v.holds[repo]; hd != nil {
		switch {
		case idErr == nil && hd.id == id && !hd.released:
			// The follower offers the held serial again: a lookup. Its
			// blobs were just put again: Release stores this head.
			hd.h, hd.next = h, s.next
			hd.attempts++
			v.n.heldAttempts++
			v.mu.Unlock()
			if by, ok := v.releasedElsewhere(ctx, repo, h); ok {
				_, err := v.publishHeld(ctx, hd, by)
				return err
			}
			return &HoldError{Repo: hd.name, Serial: hd.h.Serial, Why: hd.why}
		case idErr == nil && hd.id == id:
			// Released: the follower catches up with the store (or
			// stores it, when Release could not).
			v.mu.Unlock()
			if err := s.next.PutHead(ctx, repo, h); err != nil {
				return err
			}
			if rs := v.repos[repo]; rs == nil || rs.id != id {
				v.Seed(s.name, repo, h) // validated by Run
			}
			return nil
		default:
			delete(v.holds, repo) // another serial came: judged afresh
		}
	}
	_, queued := v.pending[repo]
	v.mu.Unlock()
	if rs := v.repos[repo]; idErr == nil && rs != nil && rs.id == id && !queued {
		return s.next.PutHead(ctx, repo, h) // the state served again
	}
	start := time.Now()
	v.readDur = 0
	serials := v.readPending(ctx)
	now := v.cfg.Now()
	publish := func(why error) error {
		v.mu.Lock()
		v.n.openErrors++
		v.lastErr = why.Error()
		v.mu.Unlock()
		v.log.Error("validation gate: cannot judge a serial, publishing it", "repo", s.name, "serial", h.Serial, "err", why)
		if err := s.next.PutHead(ctx, repo, h); err != nil {
			return err
		}
		v.Seed(s.name, repo, h)
		return nil
	}
	if idErr != nil {
		return publish(idErr)
	}
	// The state served, now: what expired since the last run is not the
	// serial's doing. Its points are all reused but those that expired;
	// the last result stands when nothing changed since it and nothing
	// it validated has expired.
	base := v.last
	if !v.stable(now) {
		var d time.Duration
		var err error
		if base, d, err = v.validate(ctx, v.rv, unionOf(v.repos, nil), now); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return publish(err)
		}
		v.commit(base, d, compare(v.last, base), serials, "revalidated", nil)
	}
	rs, err := v.load(ctx, repo, s.name, h, v.repos[repo])
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return publish(err)
	}
	trial := v.rv.Clone()
	cand, _, err := v.validate(ctx, trial, unionOf(v.repos, rs), now)
	d := time.Since(start) // the state served again, reading and validating the candidate
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return publish(err)
	}
	c := compare(base, cand)
	serial := []string{fmt.Sprintf("%s@%d", s.name, h.Serial)}
	if why := v.cfg.Rules.judge(c); len(why) > 0 {
		hd := &hold{key: repo, name: s.name, id: id, h: h, next: s.next, rs: rs, since: now, attempts: 1, why: why,
			added: len(c.added), removed: len(c.removed)}
		v.mu.Lock()
		v.holds[repo] = hd
		v.n.held++
		v.n.heldAttempts++
		v.n.ruleBreaks++
		v.record(cand, d, c, serial, "held", why)
		v.mu.Unlock()
		v.log.Warn("validation gate: serial held, the last good serial stays served", "repo", s.name, "serial", h.Serial,
			"why", why, "vrps", len(base.VRPs), "removed", len(c.removed), "added", len(c.added), "release", "rrdp-proxy release "+s.name)
		v.publishCompact(ctx, base) // what is served, at now
		// Released before this node judged it: on the node that held it
		// before a fleet's failover.
		if by, ok := v.releasedElsewhere(ctx, repo, h); ok {
			_, err := v.publishHeld(ctx, hd, by)
			return err
		}
		return &HoldError{Repo: s.name, Serial: h.Serial, Why: why}
	}
	if err := s.next.PutHead(ctx, repo, h); err != nil {
		return err // nothing changes: the follower tries again
	}
	v.rv, v.repos[repo] = trial, rs
	v.gen++
	v.commit(cand, d, c, serial, "published", nil)
	v.publishCompact(ctx, cand)
	return nil
}

// stable reports whether v.last is the validation of the states served at
// now: nothing changed since it was made, at or before now, and nothing it
// validated has expired by now (rpki.Result.StableUntil). v.runMu is held.
func (v *Validator) stable(now time.Time) bool {
	l := v.last
	return l != nil && v.lastGen == v.gen && !now.Before(l.Time) && (l.StableUntil.IsZero() || !now.After(l.StableUntil))
}

// Release publishes the serial the gate holds for the repository called
// name (or with that key) and returns what it did. The follower, which
// still has the old state, offers the same serial again at its next poll
// and it passes. When the store refuses the held head now (its blobs gone
// from memory since the follower's last attempt, without a disk tier),
// the serial stays released and the follower's next attempt stores it.
func (v *Validator) Release(ctx context.Context, name string) (string, error) {
	v.runMu.Lock()
	defer v.runMu.Unlock()
	v.mu.Lock()
	var hd *hold
	for _, x := range v.holds {
		if (x.name == name || x.key == name) && !x.released {
			hd = x
		}
	}
	v.mu.Unlock()
	if hd == nil {
		return "", fmt.Errorf("release %s: %w", name, ErrNotHeld)
	}
	msg, err := v.publishHeld(ctx, hd, "the operator")
	if err != nil {
		return msg + "; not stored now (" + err.Error() + "): the follower's next poll publishes it", nil
	}
	return msg, nil
}

// releasedElsewhere asks Config.Released about the held head h of the
// repository with key. v.runMu is held.
func (v *Validator) releasedElsewhere(ctx context.Context, key string, h *follow.Head) (string, bool) {
	if v.cfg.Released == nil {
		return "", false
	}
	return v.cfg.Released(ctx, key, h)
}

// publishHeld releases hd on the word of by: it stores the held head,
// validates the state served with it and records the run as "released".
// It returns what it did, and the store's error when the store refused
// the head: the serial stays released, and the follower's next attempt
// stores it. v.runMu is held.
func (v *Validator) publishHeld(ctx context.Context, hd *hold, by string) (string, error) {
	v.mu.Lock()
	hd.released = true
	v.n.released++
	v.mu.Unlock()
	v.log.Warn("validation gate: serial released", "repo", hd.name, "serial", hd.h.Serial, "by", by, "held_since", hd.since, "attempts", hd.attempts)
	msg := fmt.Sprintf("released %s serial %d (held since %s: %v)", hd.name, hd.h.Serial, hd.since.UTC().Format("2006-01-02T15:04:05Z"), hd.why)
	if err := hd.next.PutHead(ctx, hd.key, hd.h); err != nil {
		v.log.Warn("validation gate: the released serial could not be stored now; the follower's next attempt stores it", "repo", hd.name, "err", err)
		return msg, err
	}
	v.repos[hd.key] = hd.rs
	v.gen++
	serial := []string{fmt.Sprintf("%s@%d", hd.name, hd.h.Serial)}
	start := time.Now()
	v.readDur = 0
	res, _, err := v.validate(ctx, v.rv, unionOf(v.repos, nil), v.cfg.Now())
	if err != nil {
		v.setErr(err)
		return msg + "; validating it failed: " + err.Error(), nil
	}
	v.commit(res, time.Since(start), compare(v.last, res), serial, "released", nil)
	v.publishCompact(ctx, res)
	return msg, nil
}
