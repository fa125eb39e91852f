package validate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// Validator validates the states of the repositories a node follows. It
// is safe for concurrent use; validation runs are serialised.
type Validator struct {
	cfg  Config
	log  *slog.Logger
	src  *source
	wake chan struct{}

	// runMu serialises runs (which take seconds) and guards rv, repos
	// and readDur. mu guards the rest, held only briefly, so that the
	// status, the metrics and an observed PutHead never wait for a run.
	// A field written with both held (last, lastDur, holds) may be read
	// with either; runMu is taken first.
	runMu sync.Mutex
	rv    *rpki.Validator
	// repos are the states the store holds and the last run validated,
	// by repository key.
	repos map[string]*repoState
	// readDur is the time the current run spent reading states (load).
	readDur time.Duration
	// gen counts the changes of repos; lastGen is gen when last was
	// validated.
	gen, lastGen uint64
	// cpubs are the compact publications, by repository key; compactNew
	// says SetCompact changed them since the last run.
	cpubs      map[string]*compactPub
	compactNew bool
	// staleLimit is staleLimit (view.go), or a test's.
	staleLimit func(size int64) int64

	mu sync.Mutex
	// pending are the heads stored and not yet read, by repository key;
	// dirty says a repository was forgotten since the last run.
	pending map[string]pendingHead
	dirty   bool
	// compactAgain asks the next run to publish the compact forms
	// (RepublishCompact).
	compactAgain bool
	last         *rpki.Result // the last run's result, nil before
	lastDur      time.Duration
	lastErr      string
	holds        map[string]*hold // by repository key
	runs         []status.ValidationRun
	n            counters
	// compactSt is the state of the compact publications, for Status.
	compactSt []status.CompactPublication
	// compactKeys are the repository keys of compactSt's entries.
	compactKeys []string
}

type pendingHead struct {
	name string
	h    *follow.Head
}

// hold is a serial the gate holds back.
type hold struct {
	key, name string
	id        [sha256.Size]byte
	h         *follow.Head
	next      follow.Store
	rs        *repoState
	since     time.Time
	attempts  uint64
	why       []string
	added     int
	removed   int
	released  bool
}

// counters are the totals since New, for the metrics.
type counters struct {
	runs, failures               uint64
	held, released, heldAttempts uint64
	ruleBreaks                   uint64
	vrpsAdded, vrpsRemoved       uint64
	lastAdded, lastRemoved       int
	seconds                      float64
	openErrors                   uint64
	deltaLoads                   uint64 // states read from deltas
	compactSerials               uint64 // compact serials published
	compactFailures              uint64
}

// New returns a Validator for cfg.
func New(cfg Config) (*Validator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Validator{cfg: cfg, log: cfg.Logger, src: &source{}, wake: make(chan struct{}, 1),
		repos: map[string]*repoState{}, pending: map[string]pendingHead{}, holds: map[string]*hold{}, cpubs: map[string]*compactPub{}, staleLimit: staleLimit}
	// The compact format re-issues the points that validated.
	v.rv, err = rpki.NewValidator(rpki.Config{Source: v.src, FetchTA: cfg.FetchTA, Workers: cfg.Workers, KeepPoints: cfg.Compact != nil})
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return v, nil
}

// Store returns the follow.Store that the follower of the repository
// called name writes through: its blobs go to next at once, its heads
// after the Validator saw them (see the package documentation).
func (v *Validator) Store(name string, next follow.Store) follow.Store {
	return &store{v: v, name: name, next: next}
}

// Seed gives the Validator a head the store holds that did not come
// through Store: read back at start, or installed from a fleet's Redis.
// It is validated by the next run, never judged; a serial the gate holds
// for the repository is dropped, since the state it was judged against
// is no longer the one served.
func (v *Validator) Seed(name, key string, h *follow.Head) {
	if h == nil {
		return
	}
	v.mu.Lock()
	v.pending[key] = pendingHead{name: name, h: h}
	dropped, held := v.dropHold(key)
	v.mu.Unlock()
	if dropped {
		v.log.Info("validation gate: hold dropped, the state served changed", "repo", name, "serial", held, "served", h.Serial)
	}
	v.poke()
}

// Drop forgets the serial the gate holds for the repository with key,
// without publishing it: the follower that offered it stopped (a fleet's
// node that gave the repository's lease up; the node that took it judges
// the serial itself).
func (v *Validator) Drop(key string) {
	v.mu.Lock()
	dropped, held := v.dropHold(key)
	v.mu.Unlock()
	if dropped {
		v.log.Info("validation gate: hold dropped, the follower stopped", "repo", key, "serial", held)
	}
}

// dropHold forgets the hold of key and reports whether there was one not
// released, and its serial, read while v.mu is held (the gate writes
// them under it).
func (v *Validator) dropHold(key string) (bool, uint64) {
	hd := v.holds[key]
	delete(v.holds, key)
	if hd == nil || hd.released {
		return false, 0
	}
	return true, hd.h.Serial
}

// Forget drops the state of the repository with key (removed from the
// configuration): the next run validates without it.
func (v *Validator) Forget(key string) {
	v.runMu.Lock()
	v.mu.Lock()
	delete(v.repos, key)
	delete(v.pending, key)
	delete(v.holds, key)
	v.dirty = true
	v.gen++
	v.mu.Unlock()
	v.runMu.Unlock()
	v.poke()
}

func (v *Validator) poke() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

type store struct {
	v    *Validator
	name string
	next follow.Store
}

func (s *store) PutBlob(ctx context.Context, sum [32]byte, b []byte) error {
	return s.next.PutBlob(ctx, sum, b)
}

// coldStore is the part of a Store that keeps a serial's segments out of
// memory until its head is in place (cache.Cache.PutCold), which store
// passes through so that a follower validated here keeps the benefit.
type coldStore interface {
	Cold() bool
	PutCold(ctx context.Context, sum [32]byte, b []byte) (bool, error)
	Blob(ctx context.Context, sum [32]byte) ([]byte, error)
	Warm(ctx context.Context, repo string) (int64, error)
}

func (s *store) Cold() bool {
	cs, ok := s.next.(coldStore)
	return ok && cs.Cold()
}

func (s *store) PutCold(ctx context.Context, sum [32]byte, b []byte) (bool, error) {
	if cs, ok := s.next.(coldStore); ok {
		return cs.PutCold(ctx, sum, b)
	}
	return false, nil
}

func (s *store) Blob(ctx context.Context, sum [32]byte) ([]byte, error) {
	if cs, ok := s.next.(coldStore); ok {
		return cs.Blob(ctx, sum)
	}
	return nil, fmt.Errorf("validate: blob %x: the store cannot read blobs", sum[:8])
}

func (s *store) Warm(ctx context.Context, repo string) (int64, error) {
	if cs, ok := s.next.(coldStore); ok {
		return cs.Warm(ctx, repo)
	}
	return 0, nil
}

func (s *store) PutHead(ctx context.Context, repo string, h *follow.Head) error {
	if s.v.cfg.Gate {
		return s.v.gate(ctx, s, repo, h)
	}
	if err := s.next.PutHead(ctx, repo, h); err != nil {
		return err
	}
	s.v.Seed(s.name, repo, h)
	return nil
}

// Run validates the heads stored in observe mode (and those given by
// Seed), and every Interval the state served, until ctx ends. It returns
// ctx's error.
func (v *Validator) Run(ctx context.Context) error {
	t := time.NewTicker(v.cfg.Interval)
	defer t.Stop()
	periodic := true // the first run validates what is served
	for {
		v.runMu.Lock()
		v.observe(ctx, periodic)
		v.runMu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.wake:
			periodic = false
		case <-t.C:
			periodic = true
		}
	}
}

// readPending reads the heads stored since the last run into v.repos and
// returns them as "name@serial". v.runMu is held.
func (v *Validator) readPending(ctx context.Context) []string {
	v.mu.Lock()
	pending := v.pending
	v.pending = map[string]pendingHead{}
	v.mu.Unlock()
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var serials []string
	for _, k := range keys {
		p := pending[k]
		if rs := v.repos[k]; rs != nil {
			if id, err := headID(p.h); err == nil && id == rs.id {
				continue // the same state again
			}
		}
		rs, err := v.load(ctx, k, p.name, p.h, v.repos[k])
		if err != nil {
			v.mu.Lock()
			v.n.openErrors++
			v.lastErr = err.Error()
			v.mu.Unlock()
			v.log.Error("validation: cannot read a state", "repo", p.name, "serial", p.h.Serial, "err", err)
			continue
		}
		v.repos[k] = rs
		v.gen++
		serials = append(serials, fmt.Sprintf("%s@%d", p.name, p.h.Serial))
	}
	return serials
}

// validate runs rv over u at now. v.runMu is held.
func (v *Validator) validate(ctx context.Context, rv *rpki.Validator, u union, now time.Time) (*rpki.Result, time.Duration, error) {
	v.src.u = u
	start := time.Now()
	res, err := rv.Validate(ctx, v.cfg.TALs, now)
	d := time.Since(start)
	v.mu.Lock()
	v.n.runs++
	v.n.seconds += d.Seconds()
	if err != nil {
		v.n.failures++
	}
	v.mu.Unlock()
	if err != nil {
		return nil, d, fmt.Errorf("validate: %w", err)
	}
	if res.Stats.TALs == res.Stats.InvalidTALs {
		v.log.Warn("validation: "+errNoTAL.Error(), "tals", res.Stats.TALs)
	}
	return res, d, nil
}

// observe validates the stored states when some changed, or when
// periodic, and records what changed. v.runMu is held.
func (v *Validator) observe(ctx context.Context, periodic bool) {
	start := time.Now()
	v.readDur = 0
	serials := v.readPending(ctx)
	v.mu.Lock()
	dirty, again := v.dirty, v.compactAgain
	v.dirty, v.compactAgain = false, false
	v.mu.Unlock()
	if len(serials) == 0 && !periodic && !dirty && v.last != nil && !v.compactNew {
		if again {
			v.publishCompact(ctx, v.last)
		}
		return
	}
	res, _, err := v.validate(ctx, v.rv, unionOf(v.repos, nil), v.cfg.Now())
	d := time.Since(start) // reading the new states included
	if err != nil {
		if ctx.Err() == nil {
			v.setErr(err)
			v.log.Error("validation failed", "err", err)
		}
		return
	}
	c := compare(v.last, res)
	outcome := "observed"
	if len(serials) == 0 {
		outcome = "revalidated"
	}
	broke := v.cfg.Rules.judge(c)
	if len(broke) > 0 && len(serials) > 0 {
		v.mu.Lock()
		v.n.ruleBreaks++
		v.mu.Unlock()
		msg := "validation: a serial breaks a gate rule (observe mode: published)"
		if v.cfg.Gate {
			// Seeded: read back, or installed from a fleet's Redis.
			msg = "validation: a serial published elsewhere breaks a gate rule (released by an operator, or read back)"
		}
		v.log.Warn(msg, "serials", serials, "why", broke)
	}
	v.commit(res, d, c, serials, outcome, broke)
	v.publishCompact(ctx, res)
}

// setErr records the failure of a run or a read.
func (v *Validator) setErr(err error) {
	v.mu.Lock()
	v.lastErr = err.Error()
	v.mu.Unlock()
}

// commit makes res the state served and records the run. v.runMu is
// held.
func (v *Validator) commit(res *rpki.Result, d time.Duration, c *change, serials []string, outcome string, broke []string) {
	v.lastGen = v.gen
	v.mu.Lock()
	defer v.mu.Unlock()
	v.last, v.lastDur, v.lastErr = res, d, ""
	v.n.vrpsAdded += uint64(len(c.added))
	v.n.vrpsRemoved += uint64(len(c.removed))
	if len(serials) > 0 || changed(c) {
		v.n.lastAdded, v.n.lastRemoved = len(c.added), len(c.removed)
	}
	v.record(res, d, c, serials, outcome, broke)
	if len(serials) > 0 || changed(c) {
		v.log.Info("validated", "serials", serials, "outcome", outcome, "vrps", len(res.VRPs), "added", len(c.added), "removed", len(c.removed),
			"aspas", len(res.ASPAs), "reused", res.Stats.ReusedPoints, "revalidated", res.Stats.RevalidatedPoints, "took", d.Round(time.Millisecond),
			"reading", v.readDur.Round(time.Millisecond))
	}
}

func changed(c *change) bool {
	return len(c.added)+len(c.removed)+c.addedASPAs+c.removedASPAs+len(c.newlyFailing)+len(c.newlyValid) > 0
}

// record keeps a run that validated serials or changed something. v.mu
// is held.
func (v *Validator) record(res *rpki.Result, d time.Duration, c *change, serials []string, outcome string, broke []string) {
	if len(serials) == 0 && !changed(c) {
		return
	}
	r := status.ValidationRun{
		Time: res.Time, Duration: d, Read: v.readDur, Serials: serials, Outcome: outcome,
		VRPs: len(res.VRPs), ASPAs: len(res.ASPAs),
		Added: len(c.added), Removed: len(c.removed), AddedASPAs: c.addedASPAs, RemovedASPAs: c.removedASPAs,
		AddedSample: vrpStrings(c.added), RemovedSample: vrpStrings(c.removed),
		NewlyFailing: caStrings(c.newlyFailing), NewlyValid: caStrings(c.newlyValid), Broke: broke,
	}
	if outcome == "held" && c.before != nil {
		// What is served stays what it was.
		r.VRPs, r.ASPAs = len(c.before.VRPs), len(c.before.ASPAs)
	}
	v.runs = append([]status.ValidationRun{r}, v.runs...)
	if len(v.runs) > v.cfg.History {
		v.runs = v.runs[:v.cfg.History]
	}
}
