package status

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteJSON writes r as the JSON document served at /status.json. Keys are
// snake_case and never change meaning; times are RFC 3339 in UTC (null
// when unknown); sizes are bytes and durations whole seconds. Repositories
// come in name order and error kinds in key order, so the same Report
// always gives the same bytes.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jsonFrom(r)); err != nil {
		return fmt.Errorf("write status json: %w", err)
	}
	return nil
}

type jsonReport struct {
	Node          string   `json:"node"`
	Version       string   `json:"version"`
	Started       jsonTime `json:"started"`
	Now           jsonTime `json:"now"`
	UptimeSeconds int64    `json:"uptime_seconds"`
	Ready         bool     `json:"ready"`
	// RedisUp is null without a fleet.
	RedisUp  *bool      `json:"redis_up"`
	Requests uint64     `json:"requests"`
	BytesOut uint64     `json:"bytes_out"`
	Cache    jsonCache  `json:"cache"`
	Repos    []jsonRepo `json:"repos"`
	// Validation is left out on a node that does not validate.
	Validation *jsonValidation `json:"validation,omitempty"`
}

type jsonCache struct {
	PinnedBytes int64      `json:"pinned_bytes"`
	CachedBytes int64      `json:"cached_bytes"`
	ColdBytes   int64      `json:"cold_bytes"`
	Hits        uint64     `json:"hits"`
	Misses      uint64     `json:"misses"`
	Fills       uint64     `json:"fills"`
	Shared      uint64     `json:"shared"`
	Tiers       []jsonTier `json:"tiers"`
}

type jsonTier struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"` // -1: unknown
}

type jsonRepo struct {
	Name            string `json:"name"`
	Mode            string `json:"mode"`
	Origin          string `json:"origin"`
	NotificationXML string `json:"notification_xml"`
	NotificationBin string `json:"notification_bin"`
	Session         string `json:"session"`
	Serial          uint64 `json:"serial"`
	// Health is "ok", "retrying", "stale" or "no_state" (see StaleFactor).
	Health          string            `json:"health"`
	IntervalSeconds int64             `json:"interval_seconds"`
	StateTime       jsonTime          `json:"state_time"`
	StateAgeSeconds *int64            `json:"state_age_seconds"`
	LastSuccess     jsonTime          `json:"last_success"`
	LastErrorTime   jsonTime          `json:"last_error_time"`
	LastError       string            `json:"last_error"`
	SnapshotXML     int64             `json:"snapshot_xml_bytes"`
	SnapshotBin     int64             `json:"snapshot_bin_bytes"`
	Deltas          int               `json:"deltas"`
	DeltasXML       int64             `json:"deltas_xml_bytes"`
	DeltasBin       int64             `json:"deltas_bin_bytes"`
	Hits            uint64            `json:"hits"`
	Misses          uint64            `json:"misses"`
	Requests        uint64            `json:"requests"`
	BytesOut        uint64            `json:"bytes_out"`
	Errors          map[string]uint64 `json:"errors"`
	Role            string            `json:"role"`
	Holder          string            `json:"holder"`
	FleetError      string            `json:"fleet_error"`
}

// jsonTime marshals as an RFC 3339 UTC string, or null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(rfc3339(time.Time(t)))
}

func jsonFrom(r *Report) jsonReport {
	out := jsonReport{
		Node:          r.Node,
		Version:       r.Version,
		Started:       jsonTime(r.Started),
		Now:           jsonTime(r.Now),
		UptimeSeconds: int64(age(r.Now, r.Started) / time.Second),
		Ready:         r.Ready,
		Requests:      r.Requests,
		BytesOut:      r.BytesOut,
		Cache: jsonCache{
			PinnedBytes: r.Cache.PinnedBytes,
			CachedBytes: r.Cache.CachedBytes,
			ColdBytes:   r.Cache.ColdBytes,
			Hits:        r.Cache.Hits,
			Misses:      r.Cache.Misses,
			Fills:       r.Cache.Fills,
			Shared:      r.Cache.Shared,
			Tiers:       make([]jsonTier, 0, len(r.Cache.Tiers)),
		},
		Repos:      make([]jsonRepo, 0, len(r.Repos)),
		Validation: jsonValidationFrom(r.Validation),
	}
	if r.Started.IsZero() {
		out.UptimeSeconds = 0
	}
	if r.Fleet {
		up := r.RedisUp
		out.RedisUp = &up
	}
	for _, t := range r.Cache.Tiers {
		out.Cache.Tiers = append(out.Cache.Tiers, jsonTier{Name: t.Name, Bytes: t.Bytes})
	}
	for _, rp := range sortedRepos(r.Repos) {
		jr := jsonRepo{
			Name:            rp.Name,
			Mode:            rp.Mode,
			Origin:          rp.Origin,
			NotificationXML: rp.NotificationXML,
			NotificationBin: rp.NotificationBin,
			Session:         rp.Session,
			Serial:          rp.Serial,
			Health:          strings.ReplaceAll(rp.health(r.Now).String(), " ", "_"),
			IntervalSeconds: int64(max(rp.Interval, 0) / time.Second),
			StateTime:       jsonTime(rp.StateTime),
			LastSuccess:     jsonTime(rp.LastSuccess),
			LastErrorTime:   jsonTime(rp.LastError),
			LastError:       rp.LastErr,
			SnapshotXML:     rp.SnapshotXML,
			SnapshotBin:     rp.SnapshotBin,
			Deltas:          rp.Deltas,
			DeltasXML:       rp.DeltasXML,
			DeltasBin:       rp.DeltasBin,
			Hits:            rp.Hits,
			Misses:          rp.Misses,
			Requests:        rp.Requests,
			BytesOut:        rp.BytesOut,
			Errors:          rp.Errors,
			Role:            rp.Role,
			Holder:          rp.Holder,
			FleetError:      rp.FleetErr,
		}
		if jr.IntervalSeconds == 0 {
			jr.IntervalSeconds = int64(defaultInterval / time.Second)
		}
		if !rp.StateTime.IsZero() {
			s := int64(age(r.Now, rp.StateTime) / time.Second)
			jr.StateAgeSeconds = &s
		}
		if jr.Errors == nil {
			jr.Errors = map[string]uint64{}
		}
		out.Repos = append(out.Repos, jr)
	}
	return out
}

// sortedRepos returns the repositories in name order without touching the
// caller's slice.
func sortedRepos(repos []Repo) []*Repo {
	out := make([]*Repo, len(repos))
	for i := range repos {
		out[i] = &repos[i]
	}
	slices.SortStableFunc(out, func(a, b *Repo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
