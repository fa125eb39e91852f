package status

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Validation is what the node's validator (proxy/validate) knows: the
// outcome of its last run over every repository the node follows, the
// CAs that fail and why, what recent serials changed, and the serials the
// gate holds back. Report.Validation is nil on a node without TALs.
type Validation struct {
	// Mode is "observe" (serials are published whatever they do, and
	// the rules only say what the gate would have held) or "gate".
	Mode string
	// Rules describe the rules a serial is judged by.
	Rules []string
	// Time is when the last run validated, Duration how long it took;
	// zero before the first run.
	Time     time.Time
	Duration time.Duration
	// VRPs and ASPAs are the unique payloads of the state served.
	VRPs, ASPAs int
	// CAs counts the CA certificates reached, FailingCAs those that fail
	// (Failing lists the first of them); Problems the objects rejected.
	CAs, FailingCAs, Problems int
	Failing                   []FailingCA
	// Reused and Revalidated count the publication points of the last
	// run taken from the one before and checked again.
	Reused, Revalidated int
	// Holds are the serials the gate holds back, by repository.
	Holds []Hold
	// Runs are the recent runs that changed something, newest first.
	Runs []ValidationRun
	// Held counts the serials held since the start, Released those an
	// operator released.
	Held, Released uint64
	// Err is the last run's failure (a state that could not be read),
	// "" when none.
	Err string
	// Compact lists the compact publications, by repository.
	Compact []CompactPublication `json:",omitempty"`
}

// CompactPublication is the state of one repository's compact
// publication: the serial served, made from what validated.
type CompactPublication struct {
	Repo    string
	Session string
	Serial  uint64
	// RepoSerial is the repository's serial the last run saw (served,
	// validated): the compact serial reflects it.
	RepoSerial uint64
	// CAs counts the CA groups of the serial served; Time is when it was
	// published.
	CAs  int
	Time time.Time
	// Err is why the last attempt to publish failed, "" when none: the
	// serial served stays.
	Err string
	// Installed says another node publishes it (the fleet's holder of
	// the repository's lease) and this node serves the serial it
	// installed from Redis; RepoSerial and CAs are then not this node's.
	Installed bool
}

// FailingCA is a CA certificate, or its publication point, that failed.
type FailingCA struct {
	TA, URI string
	Err     string
}

// Hold is a serial the gate keeps from relying parties: the last good
// serial of the repository stays served until an operator releases it or
// the origin publishes another serial.
type Hold struct {
	Repo    string
	Session string
	Serial  uint64
	// Since is when it was first held; Attempts counts how often the
	// follower offered it since.
	Since    time.Time
	Attempts uint64
	// Why lists the rules it breaks.
	Why []string
	// Added and Removed count the VRPs it would add and remove.
	Added, Removed int
	// Node, on a node of a fleet, names the node whose gate holds it
	// when that is another one (its follower's report, shared through
	// Redis): Why is then that follower's error, and Attempts, Added and
	// Removed are not known (zero). "" for a hold of this node.
	Node string
}

// ValidationRun is one validation of a new state.
type ValidationRun struct {
	Time time.Time
	// Duration is the whole run, Read the part spent reading the new
	// states (their deltas, or snapshots).
	Duration, Read time.Duration
	// Serials names the states validated, "repo@serial" each ("" for a
	// periodic run).
	Serials []string
	// Outcome is "published", "observed", "held", "released" or
	// "revalidated" (a periodic run, or a run after a state was read back).
	Outcome string
	// VRPs and ASPAs after the run; what it added and removed.
	VRPs, ASPAs                int
	Added, Removed             int
	AddedASPAs, RemovedASPAs   int
	AddedSample, RemovedSample []string
	NewlyFailing, NewlyValid   []string
	// Broke lists the rules broken (a gate holds the serial; in observe
	// mode it is published all the same).
	Broke []string
}

// jsonValidation is Validation in /status.json: snake_case, times RFC
// 3339, durations in (fractional) seconds, lists never null.
type jsonValidation struct {
	Mode            string          `json:"mode"`
	Rules           []string        `json:"rules"`
	Time            jsonTime        `json:"time"`
	DurationSeconds float64         `json:"duration_seconds"`
	VRPs            int             `json:"vrps"`
	ASPAs           int             `json:"aspas"`
	CAs             int             `json:"cas"`
	FailingCAs      int             `json:"failing_cas"`
	Problems        int             `json:"rejected_objects"`
	Reused          int             `json:"points_reused"`
	Revalidated     int             `json:"points_revalidated"`
	Failing         []jsonFailingCA `json:"failing"`
	Holds           []jsonHold      `json:"holds"`
	Runs            []jsonRun       `json:"runs"`
	Held            uint64          `json:"held_total"`
	Released        uint64          `json:"released_total"`
	Error           string          `json:"error"`
	Compact         []jsonCompact   `json:"compact"`
}

type jsonCompact struct {
	Repo       string   `json:"repo"`
	Session    string   `json:"session"`
	Serial     uint64   `json:"serial"`
	RepoSerial uint64   `json:"repo_serial"`
	CAs        int      `json:"cas"`
	Time       jsonTime `json:"time"`
	Error      string   `json:"error"`
	Installed  bool     `json:"installed"`
}

type jsonFailingCA struct {
	TA    string `json:"ta"`
	URI   string `json:"uri"`
	Error string `json:"error"`
}

type jsonHold struct {
	Repo     string   `json:"repo"`
	Session  string   `json:"session"`
	Serial   uint64   `json:"serial"`
	Since    jsonTime `json:"since"`
	Attempts uint64   `json:"attempts"`
	Why      []string `json:"why"`
	Added    int      `json:"vrps_added"`
	Removed  int      `json:"vrps_removed"`
	Node     string   `json:"node,omitempty"`
}

type jsonRun struct {
	Time            jsonTime `json:"time"`
	DurationSeconds float64  `json:"duration_seconds"`
	ReadSeconds     float64  `json:"read_seconds"`
	Serials         []string `json:"serials"`
	Outcome         string   `json:"outcome"`
	VRPs            int      `json:"vrps"`
	ASPAs           int      `json:"aspas"`
	Added           int      `json:"vrps_added"`
	Removed         int      `json:"vrps_removed"`
	AddedASPAs      int      `json:"aspas_added"`
	RemovedASPAs    int      `json:"aspas_removed"`
	AddedSample     []string `json:"vrps_added_sample"`
	RemovedSample   []string `json:"vrps_removed_sample"`
	NewlyFailing    []string `json:"cas_newly_failing"`
	NewlyValid      []string `json:"cas_newly_valid"`
	Broke           []string `json:"rules_broken"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jsonValidationFrom(v *Validation) *jsonValidation {
	if v == nil {
		return nil
	}
	out := &jsonValidation{Mode: v.Mode, Rules: nonNil(v.Rules), Time: jsonTime(v.Time), DurationSeconds: v.Duration.Seconds(),
		VRPs: v.VRPs, ASPAs: v.ASPAs, CAs: v.CAs, FailingCAs: v.FailingCAs, Problems: v.Problems,
		Reused: v.Reused, Revalidated: v.Revalidated, Held: v.Held, Released: v.Released, Error: v.Err,
		Failing: []jsonFailingCA{}, Holds: []jsonHold{}, Runs: []jsonRun{}, Compact: []jsonCompact{}}
	for _, c := range v.Compact {
		out.Compact = append(out.Compact, jsonCompact{Repo: c.Repo, Session: c.Session, Serial: c.Serial, RepoSerial: c.RepoSerial,
			CAs: c.CAs, Time: jsonTime(c.Time), Error: c.Err, Installed: c.Installed})
	}
	for _, f := range v.Failing {
		out.Failing = append(out.Failing, jsonFailingCA{TA: f.TA, URI: f.URI, Error: f.Err})
	}
	for _, h := range v.Holds {
		out.Holds = append(out.Holds, jsonHold{Repo: h.Repo, Session: h.Session, Serial: h.Serial, Since: jsonTime(h.Since),
			Attempts: h.Attempts, Why: nonNil(h.Why), Added: h.Added, Removed: h.Removed, Node: h.Node})
	}
	for _, r := range v.Runs {
		out.Runs = append(out.Runs, jsonRun{Time: jsonTime(r.Time), DurationSeconds: r.Duration.Seconds(), ReadSeconds: r.Read.Seconds(), Serials: nonNil(r.Serials),
			Outcome: r.Outcome, VRPs: r.VRPs, ASPAs: r.ASPAs, Added: r.Added, Removed: r.Removed, AddedASPAs: r.AddedASPAs,
			RemovedASPAs: r.RemovedASPAs, AddedSample: nonNil(r.AddedSample), RemovedSample: nonNil(r.RemovedSample),
			NewlyFailing: nonNil(r.NewlyFailing), NewlyValid: nonNil(r.NewlyValid), Broke: nonNil(r.Broke)})
	}
	return out
}

// validationView is Validation as the HTML page shows it.
type validationView struct {
	Mode, Rules          string
	At, Took             string
	VRPs, ASPAs, CAs     string
	FailingCAs, Problems int
	Reused, Revalidated  string
	Failing              []FailingCA
	MoreFailing          int
	Holds                []holdView
	Runs                 []runView
	Compact              []compactView
	Held, Released       string
	Err                  string
}

type compactView struct {
	Repo, Session, Serial, RepoSerial, CAs, At string
	Err                                        string
	Installed                                  bool
}

type holdView struct {
	Repo, Serial, Since, Attempts string
	Why                           []string
	Added, Removed                int
	Node                          string
}

type runView struct {
	At, Took, Serials, Outcome, Class string
	VRPs, Change, ASPAChange          string
	Sample                            string
	NewlyFailing, Broke               []string
}

func validationViewFrom(v *Validation, now time.Time) *validationView {
	if v == nil {
		return nil
	}
	vv := &validationView{Mode: v.Mode, Rules: strings.Join(v.Rules, "; "), VRPs: count(uint64(v.VRPs)), ASPAs: count(uint64(v.ASPAs)),
		CAs: count(uint64(v.CAs)), FailingCAs: v.FailingCAs, Problems: v.Problems, Reused: count(uint64(v.Reused)),
		Revalidated: count(uint64(v.Revalidated)), Failing: v.Failing, MoreFailing: v.FailingCAs - len(v.Failing),
		Held: count(v.Held), Released: count(v.Released), Err: v.Err}
	if vv.Rules == "" {
		vv.Rules = "none"
	}
	if !v.Time.IsZero() {
		vv.At, vv.Took = rfc3339(v.Time), v.Duration.Round(time.Millisecond).String()
	}
	for _, h := range v.Holds {
		vv.Holds = append(vv.Holds, holdView{Repo: h.Repo, Serial: strconv.FormatUint(h.Serial, 10),
			Since: humanDuration(age(now, h.Since)), Attempts: count(h.Attempts), Why: h.Why, Added: h.Added, Removed: h.Removed, Node: h.Node})
	}
	for _, c := range v.Compact {
		cv := compactView{Repo: c.Repo, Session: c.Session, Serial: strconv.FormatUint(c.Serial, 10), RepoSerial: strconv.FormatUint(c.RepoSerial, 10),
			CAs: count(uint64(c.CAs)), At: "not yet", Err: c.Err, Installed: c.Installed}
		if !c.Time.IsZero() {
			cv.At = rfc3339(c.Time)
		}
		vv.Compact = append(vv.Compact, cv)
	}
	for _, r := range v.Runs {
		rv := runView{At: rfc3339(r.Time), Took: r.Duration.Round(time.Millisecond).String(), Serials: strings.Join(r.Serials, ", "),
			Outcome: r.Outcome, Class: "ok", VRPs: count(uint64(r.VRPs)),
			Change: fmt.Sprintf("+%d −%d", r.Added, r.Removed), ASPAChange: fmt.Sprintf("+%d −%d", r.AddedASPAs, r.RemovedASPAs),
			NewlyFailing: r.NewlyFailing, Broke: r.Broke}
		if rv.Serials == "" {
			rv.Serials = "(time)"
		}
		switch {
		case r.Outcome == "held":
			rv.Class = "bad"
		case len(r.Broke) > 0 || len(r.NewlyFailing) > 0:
			rv.Class = "warn"
		}
		var sample []string
		for _, s := range r.RemovedSample {
			sample = append(sample, "−"+s)
		}
		for _, s := range r.AddedSample {
			sample = append(sample, "+"+s)
		}
		rv.Sample = strings.Join(sample, " ")
		vv.Runs = append(vv.Runs, rv)
	}
	return vv
}
