package validate

import (
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/prometheus/client_golang/prometheus"
)

// maxFailing caps the failing CAs the status lists (all are counted).
const maxFailing = 100

// Status returns what the status page shows of the validation.
func (v *Validator) Status() *status.Validation {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := &status.Validation{Mode: "observe", Rules: v.cfg.Rules.Describe(), Err: v.lastErr,
		Held: v.n.held, Released: v.n.released, Runs: slices.Clone(v.runs)}
	if v.cfg.Gate {
		st.Mode = "gate"
	}
	if res := v.last; res != nil {
		st.Time, st.Duration = res.Time, v.lastDur
		st.VRPs, st.ASPAs, st.CAs, st.Problems = len(res.VRPs), len(res.ASPAs), len(res.CAs), len(res.Problems)
		st.Reused, st.Revalidated = res.Stats.ReusedPoints, res.Stats.RevalidatedPoints
		for _, ca := range res.CAs {
			if ca.Err == nil {
				continue
			}
			st.FailingCAs++
			if len(st.Failing) < maxFailing {
				st.Failing = append(st.Failing, status.FailingCA{TA: ca.TA, URI: ca.URI, Err: ca.Err.Error()})
			}
		}
	}
	for _, hd := range v.holds {
		if hd.released {
			continue
		}
		st.Holds = append(st.Holds, status.Hold{Repo: hd.name, Session: hd.h.Session, Serial: hd.h.Serial, Since: hd.since,
			Attempts: hd.attempts, Why: hd.why, Added: hd.added, Removed: hd.removed})
	}
	slices.SortFunc(st.Holds, func(a, b status.Hold) int { return strings.Compare(a.Repo, b.Repo) })
	st.Compact = slices.Clone(v.compactSt)
	v.installedStatus(st.Compact)
	return st
}

// ErrNoResult: WriteVRPs before the first run.
var ErrNoResult = errors.New("not validated yet")

// WriteVRPs writes the VRPs and ASPAs of the state served in
// rpki-client's JSON format (rpki.Result.WriteJSON).
func (v *Validator) WriteVRPs(w io.Writer) error {
	v.mu.Lock()
	res, d := v.last, v.lastDur
	v.mu.Unlock()
	if res == nil {
		return ErrNoResult
	}
	// A Result is not changed once made: written outside the lock.
	return res.WriteJSON(w, rpki.JSONMeta{BuildMachine: v.cfg.Node, Elapsed: d, TALFiles: v.cfg.TALFiles})
}

var (
	descVRPs     = prometheus.NewDesc("rrdp_proxy_validate_vrps", "Unique VRPs of the state served, across every repository followed.", nil, nil)
	descASPAs    = prometheus.NewDesc("rrdp_proxy_validate_aspas", "Unique ASPAs (by customer AS) of the state served.", nil, nil)
	descCAs      = prometheus.NewDesc("rrdp_proxy_validate_cas", "CA certificates reached by the last validation, by state (valid, failing).", []string{"state"}, nil)
	descProblems = prometheus.NewDesc("rrdp_proxy_validate_rejected_objects", "Objects the last validation rejected.", nil, nil)
	descRuns     = prometheus.NewDesc("rrdp_proxy_validate_runs_total", "Validation runs, held candidates and the state served included.", nil, nil)
	descSeconds  = prometheus.NewDesc("rrdp_proxy_validate_seconds_total", "Time spent validating.", nil, nil)
	descLastSecs = prometheus.NewDesc("rrdp_proxy_validate_last_duration_seconds", "Duration of the last validation of the state served.", nil, nil)
	descFailures = prometheus.NewDesc("rrdp_proxy_validate_failures_total", "Validations that could not be done, and states that could not be read.", nil, nil)
	descAdded    = prometheus.NewDesc("rrdp_proxy_validate_vrps_added_total", "VRPs added by the states served, summed over the runs.", nil, nil)
	descRemoved  = prometheus.NewDesc("rrdp_proxy_validate_vrps_removed_total", "VRPs removed by the states served, summed over the runs.", nil, nil)
	descLastAdd  = prometheus.NewDesc("rrdp_proxy_validate_last_vrps_added", "VRPs the last run that changed something added.", nil, nil)
	descLastRem  = prometheus.NewDesc("rrdp_proxy_validate_last_vrps_removed", "VRPs the last run that changed something removed.", nil, nil)
	descBreaks   = prometheus.NewDesc("rrdp_proxy_validate_rule_breaks_total", "Serials that broke a gate rule (held with the gate on, published in observe mode).", nil, nil)
	descHeld     = prometheus.NewDesc("rrdp_proxy_validate_held_total", "Serials the gate held.", nil, nil)
	descAttempts = prometheus.NewDesc("rrdp_proxy_validate_held_attempts_total", "Times a follower offered a held serial.", nil, nil)
	descReleased = prometheus.NewDesc("rrdp_proxy_validate_released_total", "Held serials released by an operator.", nil, nil)
	descHolding  = prometheus.NewDesc("rrdp_proxy_validate_holding", "1 while the gate holds a serial of the repository.", []string{"repo"}, nil)
	descCSerials = prometheus.NewDesc("rrdp_proxy_compact_serials_total", "Compact serials published, over every repository.", nil, nil)
	descCFails   = prometheus.NewDesc("rrdp_proxy_compact_failures_total", "Attempts to publish a compact serial that failed (the last one stays served).", nil, nil)
	descCSerial  = prometheus.NewDesc("rrdp_proxy_compact_serial", "The compact serial served, by repository.", []string{"repo"}, nil)
)

// Describe implements prometheus.Collector.
func (v *Validator) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVRPs, descASPAs, descCAs, descProblems, descRuns, descSeconds, descLastSecs, descFailures,
		descAdded, descRemoved, descLastAdd, descLastRem, descBreaks, descHeld, descAttempts, descReleased, descHolding,
		descCSerials, descCFails, descCSerial} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (v *Validator) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	defer v.mu.Unlock()
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	counter := func(d *prometheus.Desc, x float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, x)
	}
	if res := v.last; res != nil {
		failing := 0
		for _, ca := range res.CAs {
			if ca.Err != nil {
				failing++
			}
		}
		gauge(descVRPs, float64(len(res.VRPs)))
		gauge(descASPAs, float64(len(res.ASPAs)))
		gauge(descCAs, float64(len(res.CAs)-failing), "valid")
		gauge(descCAs, float64(failing), "failing")
		gauge(descProblems, float64(len(res.Problems)))
		gauge(descLastSecs, v.lastDur.Seconds())
	}
	n := v.n
	counter(descRuns, float64(n.runs))
	counter(descSeconds, n.seconds)
	counter(descFailures, float64(n.failures+n.openErrors))
	counter(descAdded, float64(n.vrpsAdded))
	counter(descRemoved, float64(n.vrpsRemoved))
	gauge(descLastAdd, float64(n.lastAdded))
	gauge(descLastRem, float64(n.lastRemoved))
	counter(descBreaks, float64(n.ruleBreaks))
	counter(descHeld, float64(n.held))
	counter(descAttempts, float64(n.heldAttempts))
	counter(descReleased, float64(n.released))
	for _, hd := range v.holds {
		if !hd.released {
			gauge(descHolding, 1, hd.name)
		}
	}
	if v.cfg.Compact != nil {
		counter(descCSerials, float64(n.compactSerials))
		counter(descCFails, float64(n.compactFailures))
		for _, cp := range v.compactSt {
			if cp.Serial > 0 {
				gauge(descCSerial, float64(cp.Serial), cp.Repo)
			}
		}
	}
}
