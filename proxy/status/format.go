package status

import (
	"math"
	"strconv"
	"time"
)

// StaleFactor is how many poll intervals may pass since a repository's
// state was last confirmed (a successful poll of the origin, or the
// publication of the state itself, whichever is later) before the page
// shows the repository as stale: 3 min with the default interval of 1 min,
// which allows two failed polls in a row before an operator sees red.
const StaleFactor = 3

// defaultInterval is the follower's default poll interval.
const defaultInterval = time.Minute

// health is a repository's condition as the page colours it.
type health int

const (
	healthOK       health = iota // confirmed recently, no newer error
	healthRetrying               // confirmed recently, but the last poll failed
	healthStale                  // not confirmed for StaleFactor intervals
	healthNone                   // no verified state yet
)

func (h health) String() string {
	switch h {
	case healthOK:
		return "ok"
	case healthRetrying:
		return "retrying"
	case healthStale:
		return "stale"
	default:
		return "no state"
	}
}

// confirmed is when the repository's state was last known to be current.
func (r *Repo) confirmed() time.Time {
	if r.LastSuccess.After(r.StateTime) {
		return r.LastSuccess
	}
	return r.StateTime
}

// staleAfter is the age of the confirmation past which the state is stale.
func (r *Repo) staleAfter() time.Duration {
	iv := r.Interval
	if iv <= 0 {
		iv = defaultInterval
	}
	return StaleFactor * iv
}

// health classifies the repository at time now.
func (r *Repo) health(now time.Time) health {
	switch {
	case r.StateTime.IsZero():
		return healthNone
	case now.Sub(r.confirmed()) > r.staleAfter():
		return healthStale
	case !r.LastError.IsZero() && r.LastError.After(r.LastSuccess):
		return healthRetrying
	default:
		return healthOK
	}
}

// age is now - t, never negative, rounded down to whole seconds.
func age(now, t time.Time) time.Duration {
	d := now.Sub(t)
	if d < 0 {
		return 0
	}
	return d.Truncate(time.Second)
}

// humanDuration writes d for a reader: "42 s", "3 min", "2 h 5 min",
// "4 d 3 h". The two largest units are shown and the rest is dropped.
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	const (
		minute = 60
		hour   = 60 * minute
		day    = 24 * hour
	)
	two := func(a int64, ua string, b int64, ub string) string {
		out := strconv.FormatInt(a, 10) + " " + ua
		if b > 0 {
			out += " " + strconv.FormatInt(b, 10) + " " + ub
		}
		return out
	}
	switch {
	case s < minute:
		return strconv.FormatInt(s, 10) + " s"
	case s < hour:
		return strconv.FormatInt(s/minute, 10) + " min"
	case s < day:
		return two(s/hour, "h", s%hour/minute, "min")
	default:
		return two(s/day, "d", s%day/hour, "h")
	}
}

// humanBytes writes n in decimal units with three significant digits:
// "950 B", "12.3 kB", "1.50 GB".
func humanBytes(n int64) string {
	if n < 0 {
		return "unknown"
	}
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	i := -1
	for v >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	prec := 2
	switch {
	case v >= 99.95:
		prec = 0
	case v >= 9.995:
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + units[i]
}

// saving is the share of xml that bin saves, in percent; ok is false when
// there is nothing to compare.
func saving(xml, bin int64) (pct float64, ok bool) {
	if xml <= 0 || bin < 0 {
		return 0, false
	}
	return 100 * float64(xml-bin) / float64(xml), true
}

// ratio is hits / (hits + misses) in percent, rounded down to a tenth so
// that 100.0 % means no miss at all; ok is false before the first lookup.
func ratio(hits, misses uint64) (pct float64, ok bool) {
	total := hits + misses
	if total == 0 {
		return 0, false
	}
	return math.Floor(1000*float64(hits)/float64(total)) / 10, true
}

// percent writes a percentage with one decimal, or a dash.
func percent(pct float64, ok bool) string {
	if !ok {
		return "–"
	}
	return strconv.FormatFloat(pct, 'f', 1, 64) + " %"
}

// count writes n with thin groups of three digits: "1 234 567".
func count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 4 {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/3*3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, "\u202f"...)
		}
		out = append(out, s[i])
	}
	return string(out)
}

// rfc3339 writes t in UTC, or "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
