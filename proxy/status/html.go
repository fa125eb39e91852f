package status

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

// page is parsed once; html/template escapes every value by context, so a
// repository name, URL or error text cannot inject markup or script.
var page = template.Must(template.New("status").Parse(pageHTML))

// WriteHTML writes r as the self-contained HTML page served at /status:
// inline CSS, no script, no external assets, refreshed every 30 s by the
// browser. A repository is shown red when it has no state or its state was
// not confirmed for StaleFactor poll intervals, amber when its last poll
// failed but the state is still recent.
func WriteHTML(w io.Writer, r *Report) error {
	if err := page.Execute(w, viewFrom(r)); err != nil {
		return fmt.Errorf("write status page: %w", err)
	}
	return nil
}

// view is what the template shows, preformatted so that the template
// holds layout only.
type view struct {
	Node, Version        string
	Now, Started, Uptime string
	Ready                bool
	Fleet, RedisUp       bool
	Requests             string
	BytesOut, BytesExact string
	Repos                []repoView
	OK, Retrying, Stale  int
	NoState              int
	Cache                cacheView
	StaleFactor          int
	DefaultInterval      string
	Validation           *validationView
}

type cacheView struct {
	Pinned, Cached           string
	HitRatio                 string
	Hits, Misses             string
	Fills, Shared            string
	Tiers                    []tierView
	PinnedExact, CachedExact string
}

type tierView struct{ Name, Bytes string }

type repoView struct {
	Name, Mode, Origin string
	XML, Bin           string
	Session, Serial    string
	Health, Class      string // Class: ok, warn or bad
	StateAge, StateAt  string
	Checked, CheckedAt string
	Confirmed          string   // age of the last confirmation
	OriginParts        []string // the origin URL cut after each '/'
	StaleAfter         string
	Snap, Delta        sizes
	Deltas             int
	HitRatio           string
	Hits, Misses       string
	Requests           string
	BytesOut           string
	BytesExact         string
	ErrAt, ErrAge, Err string
	Errors             []kindCount
	Role, Holder       string
	FleetErr           string
}

type sizes struct {
	XML, Bin, Saving   string
	XMLExact, BinExact string
}

type kindCount struct{ Kind, N string }

func viewFrom(r *Report) view {
	v := view{
		Node:            r.Node,
		Version:         r.Version,
		Now:             rfc3339(r.Now),
		Started:         rfc3339(r.Started),
		Ready:           r.Ready,
		Fleet:           r.Fleet,
		RedisUp:         r.RedisUp,
		Requests:        count(r.Requests),
		BytesOut:        humanBytes(clamp(r.BytesOut)),
		BytesExact:      strconv.FormatUint(r.BytesOut, 10) + " bytes",
		StaleFactor:     StaleFactor,
		DefaultInterval: humanDuration(defaultInterval),
		Validation:      validationViewFrom(r.Validation, r.Now),
		Cache: cacheView{
			Pinned:      humanBytes(r.Cache.PinnedBytes),
			Cached:      humanBytes(r.Cache.CachedBytes),
			PinnedExact: strconv.FormatInt(r.Cache.PinnedBytes, 10) + " bytes",
			CachedExact: strconv.FormatInt(r.Cache.CachedBytes, 10) + " bytes",
			HitRatio:    percent(ratio(r.Cache.Hits, r.Cache.Misses)),
			Hits:        count(r.Cache.Hits),
			Misses:      count(r.Cache.Misses),
			Fills:       count(r.Cache.Fills),
			Shared:      count(r.Cache.Shared),
		},
	}
	if !r.Started.IsZero() {
		v.Uptime = humanDuration(age(r.Now, r.Started))
	}
	for _, t := range r.Cache.Tiers {
		v.Cache.Tiers = append(v.Cache.Tiers, tierView{Name: t.Name, Bytes: humanBytes(t.Bytes)})
	}
	for _, rp := range sortedRepos(r.Repos) {
		rv := repoViewFrom(rp, r.Now)
		switch rp.health(r.Now) {
		case healthOK:
			v.OK++
		case healthRetrying:
			v.Retrying++
		case healthStale:
			v.Stale++
		default:
			v.NoState++
		}
		v.Repos = append(v.Repos, rv)
	}
	return v
}

func repoViewFrom(rp *Repo, now time.Time) repoView {
	h := rp.health(now)
	rv := repoView{
		Name:        rp.Name,
		Mode:        rp.Mode,
		Origin:      rp.Origin,
		OriginParts: splitAfterSlash(rp.Origin),
		XML:         rp.NotificationXML,
		Bin:         rp.NotificationBin,
		Session:     rp.Session,
		Health:      h.String(),
		Class:       [...]string{healthOK: "ok", healthRetrying: "warn", healthStale: "bad", healthNone: "bad"}[h],
		StaleAfter:  humanDuration(rp.staleAfter()),
		Snap:        sizesOf(rp.SnapshotXML, rp.SnapshotBin),
		Delta:       sizesOf(rp.DeltasXML, rp.DeltasBin),
		Deltas:      rp.Deltas,
		HitRatio:    percent(ratio(rp.Hits, rp.Misses)),
		Hits:        count(rp.Hits),
		Misses:      count(rp.Misses),
		Requests:    count(rp.Requests),
		BytesOut:    humanBytes(clamp(rp.BytesOut)),
		BytesExact:  strconv.FormatUint(rp.BytesOut, 10) + " bytes",
		Err:         rp.LastErr,
		Role:        rp.Role,
		Holder:      rp.Holder,
		FleetErr:    rp.FleetErr,
	}
	if !rp.StateTime.IsZero() {
		rv.Serial = strconv.FormatUint(rp.Serial, 10)
		rv.StateAge = humanDuration(age(now, rp.StateTime))
		rv.StateAt = rfc3339(rp.StateTime)
		rv.Confirmed = humanDuration(age(now, rp.confirmed()))
	}
	if !rp.LastSuccess.IsZero() {
		rv.Checked = humanDuration(age(now, rp.LastSuccess))
		rv.CheckedAt = rfc3339(rp.LastSuccess)
	}
	if !rp.LastError.IsZero() {
		rv.ErrAt = rfc3339(rp.LastError)
		rv.ErrAge = humanDuration(age(now, rp.LastError))
	}
	for _, k := range slices.Sorted(maps.Keys(rp.Errors)) {
		if n := rp.Errors[k]; n > 0 {
			rv.Errors = append(rv.Errors, kindCount{Kind: k, N: count(n)})
		}
	}
	return rv
}

func sizesOf(xml, bin int64) sizes {
	if xml <= 0 && bin <= 0 {
		return sizes{}
	}
	return sizes{
		XML:      humanBytes(xml),
		Bin:      humanBytes(bin),
		Saving:   percent(saving(xml, bin)),
		XMLExact: strconv.FormatInt(xml, 10) + " bytes",
		BinExact: strconv.FormatInt(bin, 10) + " bytes",
	}
}

// clamp converts a byte counter for humanBytes.
func clamp(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n)
}

// splitAfterSlash cuts a URL after each '/', so that the page can offer a
// line break there and nowhere else.
func splitAfterSlash(s string) []string {
	return strings.SplitAfter(s, "/")
}
