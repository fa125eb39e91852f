package proxy

import (
	"bytes"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// The metrics go through prometheus/client_golang, on a registry of the
// Server's own (never the global one): the library gives the go_* and
// process_* collectors, histograms, and an exposition that validates
// names, escapes labels and writes HELP and TYPE once per family. The
// counters of the request path stay plain atomics that a collector reads
// at scrape time, so that a request costs a few atomic adds and no
// allocation (TestAllocs); only the request-duration histogram is a
// client_golang instrument on that path, resolved once per kind and format.

// codes are the statuses counted apart; any other counts as "other".
var codes = [...]int{200, 206, 304, 400, 404, 405, 416, 500, 502, 503, 504}

const numCodes = len(codes) + 1

func codeIndex(status int) int {
	for i, c := range codes {
		if c == status {
			return i
		}
	}
	return len(codes)
}

func codeName(i int) string {
	if i == len(codes) {
		return "other"
	}
	return strconv.Itoa(codes[i])
}

// repoMetrics are the counters of one repository, or of the requests that
// reached none. Counting is a few atomic adds: no lock, no allocation.
type repoMetrics struct {
	requests [numKinds][numFormats][numCodes]atomic.Uint64
	bytesOut atomic.Uint64
	// hits are requests answered from a head or a file pulled before;
	// misses those that needed a pull-through.
	hits, misses atomic.Uint64
	// pullFetches are files fetched from the origin, pullShared requests
	// that waited for another's fetch, pullNotifications origin
	// notifications fetched to vouch for them, pullErrors failures.
	pullFetches, pullShared, pullNotifications, pullErrors atomic.Uint64
	// catchups are requests served from a newer head than the node's
	// (Config.Catchup: the fleet's shared tier, or a poll of the origin).
	catchups atomic.Uint64
	// passHits, passFetches and passErrors count the host's other files
	// served from the pass-through cache, fetched (or revalidated) from
	// the origin, and failed fetches.
	passHits, passFetches, passErrors atomic.Uint64
}

func (m *repoMetrics) count(k fileKind, f fileFormat, status, n int) {
	m.requests[k][f][codeIndex(status)].Add(1)
	m.bytesOut.Add(uint64(n))
}

func (m *repoMetrics) total() uint64 {
	var n uint64
	for k := range m.requests {
		for f := range m.requests[k] {
			for c := range m.requests[k][f] {
				n += m.requests[k][f][c].Load()
			}
		}
	}
	return n
}

// Buckets of the histograms, in seconds. A request is answered from memory
// in microseconds unless it waits for a pull-through; a sync takes from a
// few milliseconds (304) to minutes (a large snapshot).
var (
	requestBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60}
	syncBuckets    = []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 180, 600}
)

// metrics is the Server's registry and the instruments updated between
// scrapes.
type metrics struct {
	reg *prometheus.Registry
	// reqDur is resolved per kind and format at start: Observe on the
	// request path then neither locks nor allocates.
	reqDur  [numKinds][numFormats]prometheus.Observer
	syncDur *prometheus.HistogramVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "rrdp_proxy_request_duration_seconds",
		Help: "Time from a repository request's arrival to its handler's return, by kind of file (notification, snapshot, delta, other: by the file name) and format (xml, bin). " +
			"It includes waiting for a pull-through fetch, not the body's transfer, which the HTTP server writes after the handler returns.",
		Buckets: requestBuckets,
	}, []string{"kind", "format"})
	for k := range numKinds {
		for f := range numFormats {
			m.reqDur[k][f] = dur.WithLabelValues(kindNames[k], formatNames[f])
		}
	}
	m.syncDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "rrdp_proxy_follow_sync_duration_seconds",
		Help:    "Duration of the syncs of this node's followers (a notification fetch and what it leads to), by repository and result (ok, error).",
		Buckets: syncBuckets,
	}, []string{"repo", "result"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "rrdp_proxy_build_info",
		Help:        "Always 1; the labels say which rrdp-proxy and Go built this process.",
		ConstLabels: prometheus.Labels{"version": s.cfg.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, dur, m.syncDur, serverCollector{s},
	)
	if s.cfg.Validation != nil {
		m.reg.MustRegister(s.cfg.Validation)
	}
	return m
}

// ObserveSync records the duration of one sync of the follower of the
// repository called repo, and whether it failed, in
// rrdp_proxy_follow_sync_duration_seconds. It is meant for
// follow.Config.OnSync.
func (s *Server) ObserveSync(repo string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.m.syncDur.WithLabelValues(repo, result).Observe(d.Seconds())
}

// observe records a repository request's duration, its kind and format
// taken from the file name: the handler then need not report what it
// served (pull-through, 404 and 503 included).
func (s *Server) observe(rel []byte, start time.Time) {
	s.m.reqDur[kindOfName(rel)][formatOfName(rel)].Observe(time.Since(start).Seconds())
}

// kindOfName classifies a path under a repository by its last element, as
// rrdp-proxy names its files (irpki.FilePath) and publication servers
// name theirs: notification.*, snapshot.*, delta.*; other paths are
// "other".
func kindOfName(rel []byte) fileKind {
	name := rel[bytes.LastIndexByte(rel, '/')+1:]
	switch {
	case bytes.HasPrefix(name, []byte("notification.")):
		return kindNotification
	case bytes.HasPrefix(name, []byte("snapshot.")):
		return kindSnapshot
	case bytes.HasPrefix(name, []byte("delta.")):
		return kindDelta
	}
	return kindOther
}

// writeMetrics renders every metric of the server in the Prometheus text
// format, and returns it with its content type.
func (s *Server) writeMetrics() ([]byte, string) {
	mfs, err := s.m.reg.Gather()
	if err != nil {
		// Gather returns what it could collect beside the error.
		s.log.Error("metrics: gather", "err", err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.log.Error("metrics: encode", "family", mf.GetName(), "err", err)
		}
	}
	return b.Bytes(), string(format)
}

// desc returns the description of a family of the server's collector.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// followErrorKinds is the help text's list of the follower's error kinds,
// in the order followErrors gives them.
var followErrorKinds = "sync (a poll failed; the last good state stays), desync (a known serial whose delta hash changed), " +
	"backwards (a serial lower than ours in the same session), delta (a delta run abandoned for the snapshot), " +
	"reset (a downstream session reset), start (a stored state whose files could not be read back), " +
	"unreachable (connection refused, DNS, TLS), timeout (deadlines and the minimum transfer rate), " +
	"http_status (an unexpected HTTP status), too_large (over a size cap, gzip bombs included), " +
	"truncated (a body that ended early, broken gzip), redirect (a redirect refused), " +
	"hash (a file whose hash differs from the notification's), invalid (broken XML or .bin, a wrong session or serial, a gap, a bad replace), " +
	"cross_origin (a file named on another origin, RFC 9674), store (the store refused a blob or a head), " +
	"snapshot_mismatch (reverse mode: the origin's snapshot differed from the state its deltas led to; the snapshot was taken)"

var (
	descRequests      = desc("rrdp_proxy_requests_total", "Requests for a repository's paths, by repository, kind of file (notification, snapshot, delta, other), format (xml, bin) and status code.", "repo", "kind", "format", "code")
	descOtherRequests = desc("rrdp_proxy_other_requests_total", "Requests outside every repository (operator pages, unknown paths, methods other than GET and HEAD), by status code.", "code")
	descBytes         = desc("rrdp_proxy_response_bytes_total", "Body bytes sent for a repository's paths.", "repo")
	descOtherBytes    = desc("rrdp_proxy_other_response_bytes_total", "Body bytes sent outside every repository.")
	descHits          = desc("rrdp_proxy_hits_total", "Requests for a file answered from memory (the state served or a file pulled before).", "repo")
	descMisses        = desc("rrdp_proxy_misses_total", "Requests for a file the state does not name, which needed a pull-through.", "repo")
	descPullFetches   = desc("rrdp_proxy_pull_fetches_total", "Files fetched from the origin for pull-through.", "repo")
	descPullShared    = desc("rrdp_proxy_pull_shared_total", "Pull-through requests that waited for another request's fetch.", "repo")
	descPullNotifs    = desc("rrdp_proxy_pull_notifications_total", "Origin notifications fetched to vouch for pull-through files.", "repo")
	descPullErrors    = desc("rrdp_proxy_pull_errors_total", "Failed pull-through fetches.", "repo")
	descPassHits      = desc("rrdp_proxy_passthrough_hits_total", "Requests for the host's other files (not RRDP: the TA certificate, robots.txt) answered from the pass-through cache.", "repo")
	descPassFetches   = desc("rrdp_proxy_passthrough_fetches_total", "The host's other files fetched or revalidated from the origin.", "repo")
	descPassErrors    = desc("rrdp_proxy_passthrough_errors_total", "Failed fetches of the host's other files (a copy in hand is served while it is not older than stale-if-error).", "repo")
	descCatchups      = desc("rrdp_proxy_catchup_total", "Requests for a file of a newer serial than the node's, served from the fleet's shared tier or after polling the origin.", "repo")
	descReady         = desc("rrdp_proxy_state_ready", "1 when the repository has a verified state to serve, else 0.", "repo")
	descSerial        = desc("rrdp_proxy_state_serial", "Serial of the state served; absent before the first.", "repo")
	descStateTime     = desc("rrdp_proxy_state_timestamp_seconds", "When the state served was published (Unix time): the repository's last change.", "repo")
	descInterval      = desc("rrdp_proxy_follow_interval_seconds", "Poll interval of the repository, for staleness rules.", "repo")
	descSyncs         = desc("rrdp_proxy_follow_syncs_total", "Notification fetches of the follower polling the repository's origin (on a fleet node that does not hold the lease: the holder's, as it shared them).", "repo")
	descFollowErrors  = desc("rrdp_proxy_follow_errors_total", "Failures of the follower polling the repository's origin (on a fleet node that does not hold the lease: the holder's), by kind: "+followErrorKinds+".", "repo", "kind")
	descLastSuccess   = desc("rrdp_proxy_follow_last_success_timestamp_seconds", "When the follower polling the repository's origin last synced successfully (Unix time); absent before the first success.", "repo")
	descLastError     = desc("rrdp_proxy_follow_last_error_timestamp_seconds", "When the follower polling the repository's origin last failed (Unix time); absent before the first failure.", "repo")
	descRole          = desc("rrdp_proxy_fleet_role", "1 for the role this node has for the repository: standalone (no fleet), holder (holds the fleet's lease and polls the origin), follower (installs the holder's states from Redis), solo (a fleet node polling alone while Redis is unreachable).", "repo", "role")
	descHolder        = desc("rrdp_proxy_fleet_holder_info", "1, naming the node that holds the repository's lease (this one's name on a standalone node); absent while the lease is free or unknown.", "repo", "holder")
	descLeases        = desc("rrdp_proxy_fleet_leases_taken_total", "Times this node took the repository's lease; its rate is the fleet's lease churn.", "repo")
	descRedisUp       = desc("rrdp_proxy_fleet_redis_up", "1 when this fleet node's last Redis call succeeded, else 0; absent without a fleet.")
	descCache         = desc("rrdp_proxy_cache_operations_total", "Blob reads of the cache by outcome: hit (from memory), miss (needed a fill), fill (filled from a lower tier), shared (waited for another caller's fill), fill_error (in no tier), sum_error (a lower tier's bytes did not match their hash).", "op")
	descPinned        = desc("rrdp_proxy_cache_pinned_bytes", "Bytes of the pinned current state of every repository.")
	descCached        = desc("rrdp_proxy_cache_cached_bytes", "Bytes in the cache's evictable part.")
	descCold          = desc("rrdp_proxy_cache_cold_bytes", "Bytes of the pinned and pending blobs that only the state directory holds yet: a serial's new segments, read back into memory once its head is in place.")
	descTier          = desc("rrdp_proxy_cache_tier_bytes", "Bytes of blobs each lower tier holds (tier1 the first below memory), counted as they are written and removed, never by listing them; absent when the tier does not say.", "tier")
	descTierMax       = desc("rrdp_proxy_cache_tier_max_bytes", "The byte cap of a lower tier that has one (the state directory: cache.disk).", "tier")
	descTierUsed      = desc("rrdp_proxy_cache_tier_used_bytes", "Bytes a capped tier compares with its cap: its blobs and heads.", "tier")
	descTierCurrent   = desc("rrdp_proxy_cache_tier_current_bytes", "Bytes of the current state of every repository in a capped tier (what the notifications name), which is never evicted.", "tier")
	descTierEvicted   = desc("rrdp_proxy_cache_tier_evictions_total", "Retained files a capped tier dropped, oldest first, to keep to its cap; they answer 404 from then on.", "tier")
	descTierFreed     = desc("rrdp_proxy_cache_tier_evicted_bytes_total", "Bytes of blobs a capped tier removed to keep to its cap.", "tier")
	descTierOver      = desc("rrdp_proxy_cache_tier_over_max", "1 while the current state alone exceeds a capped tier's cap (it is kept and served, without retention; raise cache.disk), else 0.", "tier")
	descTierOverCount = desc("rrdp_proxy_cache_tier_over_max_total", "Times a capped tier found the current state alone above its cap.", "tier")
	descTierHeld      = desc("rrdp_proxy_cache_tier_held_bytes", "Bytes of blobs a capped tier keeps for responses still sending retained files it dropped; counted in its used bytes, removed once the responses end.", "tier")
)

// serverCollector reads the server's counters, the heads and the
// followers' and fleet's states at scrape time. It lists no directory and
// makes no network call: Cache.Stats counts its tiers' bytes as they
// change.
type serverCollector struct{ s *Server }

func (serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descOtherRequests, descBytes, descOtherBytes, descHits, descMisses,
		descPullFetches, descPullShared, descPullNotifs, descPullErrors, descCatchups, descPassHits, descPassFetches, descPassErrors, descReady, descSerial, descStateTime, descInterval,
		descSyncs, descFollowErrors, descLastSuccess, descLastError, descRole, descHolder, descLeases, descRedisUp,
		descCache, descPinned, descCached, descCold, descTier,
		descTierMax, descTierUsed, descTierCurrent, descTierEvicted, descTierFreed, descTierOver, descTierOverCount, descTierHeld} {
		ch <- d
	}
}

func (c serverCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	unix := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

	var other [numCodes]uint64
	for k := range s.other.requests {
		for f := range s.other.requests[k] {
			for i := range s.other.requests[k][f] {
				other[i] += s.other.requests[k][f][i].Load()
			}
		}
	}
	for i, v := range other {
		if v > 0 {
			counter(descOtherRequests, v, codeName(i))
		}
	}
	counter(descOtherBytes, s.other.bytesOut.Load())

	redisSeen := false
	for _, r := range s.tab.Load().repos {
		name := r.cfg.Name
		for k := range r.m.requests {
			for f := range r.m.requests[k] {
				for i := range r.m.requests[k][f] {
					if v := r.m.requests[k][f][i].Load(); v > 0 {
						counter(descRequests, v, name, kindNames[k], formatNames[f], codeName(i))
					}
				}
			}
		}
		counter(descBytes, r.m.bytesOut.Load(), name)
		counter(descHits, r.m.hits.Load(), name)
		counter(descMisses, r.m.misses.Load(), name)
		counter(descPullFetches, r.m.pullFetches.Load(), name)
		counter(descPullShared, r.m.pullShared.Load(), name)
		counter(descPullNotifs, r.m.pullNotifications.Load(), name)
		counter(descPullErrors, r.m.pullErrors.Load(), name)
		counter(descCatchups, r.m.catchups.Load(), name)
		counter(descPassHits, r.m.passHits.Load(), name)
		counter(descPassFetches, r.m.passFetches.Load(), name)
		counter(descPassErrors, r.m.passErrors.Load(), name)

		if h := s.cfg.Cache.Head(r.cfg.Key); h != nil {
			gauge(descReady, 1, name)
			gauge(descSerial, float64(h.Serial), name)
			gauge(descStateTime, unix(h.Time), name)
		} else {
			gauge(descReady, 0, name)
		}
		interval := r.live.Load().interval
		if interval <= 0 {
			interval = time.Minute // the follower's default
		}
		gauge(descInterval, interval.Seconds(), name)

		if st, ok := r.followStats(); ok {
			counter(descSyncs, st.Syncs, name)
			for _, e := range followErrors(st) {
				counter(descFollowErrors, e.n, name, e.kind)
			}
			if !st.LastSuccess.IsZero() {
				gauge(descLastSuccess, unix(st.LastSuccess), name)
			}
			if !st.LastError.IsZero() {
				gauge(descLastError, unix(st.LastError), name)
			}
		}
		fs := s.fleetStatus(name)
		for _, role := range roles {
			v := 0.0
			if role == fs.Role {
				v = 1
			}
			gauge(descRole, v, name, role)
		}
		if fs.Holder != "" {
			gauge(descHolder, 1, name, fs.Holder)
		}
		if s.cfg.Fleet != nil {
			counter(descLeases, fs.Leases, name)
			if !redisSeen {
				redisSeen = true
				up := 0.0
				if fs.RedisUp {
					up = 1
				}
				gauge(descRedisUp, up)
			}
		}
	}

	cs := s.cfg.Cache.Stats()
	for _, op := range []struct {
		name string
		v    uint64
	}{{"hit", cs.Hits}, {"miss", cs.Misses}, {"fill", cs.Fills}, {"shared", cs.Shared}, {"fill_error", cs.FillErrors}, {"sum_error", cs.SumErrors}} {
		counter(descCache, op.v, op.name)
	}
	gauge(descPinned, float64(cs.PinnedBytes))
	gauge(descCached, float64(cs.CachedBytes))
	gauge(descCold, float64(cs.ColdBytes))
	for i, b := range cs.TierBytes {
		tier := "tier" + strconv.Itoa(i+1)
		if b >= 0 {
			gauge(descTier, float64(b), tier)
		}
		if c := cs.TierCaps[i]; c.Max > 0 {
			over := 0.0
			if c.OverMax {
				over = 1
			}
			gauge(descTierMax, float64(c.Max), tier)
			gauge(descTierUsed, float64(c.Used), tier)
			gauge(descTierCurrent, float64(c.Current), tier)
			counter(descTierEvicted, c.Evictions, tier)
			counter(descTierFreed, c.EvictedBytes, tier)
			gauge(descTierOver, over, tier)
			counter(descTierOverCount, c.OverMaxCount, tier)
			gauge(descTierHeld, float64(c.Held), tier)
		}
	}
}

// FleetStatus is what a node does for one repository in a fleet
// (Config.Fleet).
type FleetStatus struct {
	// Role is "holder", "follower" or "solo" (RoleStandalone without a
	// fleet).
	Role string
	// Holder names the node polling the origin: the lease's holder, this
	// node while it holds the lease or polls alone; empty when unknown.
	Holder string
	// RedisUp: the node's last Redis call succeeded.
	RedisUp bool
	// Leases counts the times this node took the repository's lease.
	Leases uint64
	// Err is the node's last fleet error for the repository (a head it
	// could not install, a lease it could not renew); empty when none.
	Err string
}

// Roles of FleetStatus.
const (
	RoleStandalone = "standalone"
	RoleHolder     = "holder"
	RoleFollower   = "follower"
	RoleSolo       = "solo"
)

var roles = []string{RoleStandalone, RoleHolder, RoleFollower, RoleSolo}

// fleetStatus returns the fleet status of the repository called name, or
// a standalone one naming this node.
func (s *Server) fleetStatus(name string) FleetStatus {
	if s.cfg.Fleet != nil {
		if fs, ok := s.cfg.Fleet(name); ok {
			return fs
		}
	}
	return FleetStatus{Role: RoleStandalone, Holder: s.cfg.Node}
}

type followError struct {
	kind string
	n    uint64
}

// followErrors lists the follower's failures by kind, in the order of
// followErrorKinds.
func followErrors(st follow.Stats) []followError {
	return []followError{
		{"sync", st.Errors}, {"desync", st.Desyncs}, {"backwards", st.Backwards}, {"delta", st.DeltaFailures},
		{"reset", st.Resets}, {"start", st.StartFailures},
		{"unreachable", st.Unreachable}, {"timeout", st.Timeouts}, {"http_status", st.HTTPStatus},
		{"too_large", st.TooLarge}, {"truncated", st.Truncated}, {"redirect", st.Redirects},
		{"hash", st.HashMismatches}, {"invalid", st.Invalid}, {"cross_origin", st.CrossOrigin},
		{"store", st.StoreFailures}, {"snapshot_mismatch", st.SnapshotMismatches},
	}
}
