package proxy

import (
	"bytes"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

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

// promWriter writes the Prometheus text exposition format (version
// 0.0.4) by hand: HELP and TYPE once per family, then its samples.
type promWriter struct {
	b bytes.Buffer
}

func (w *promWriter) family(name, typ, help string) {
	w.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes name{labels} value; labels alternate names and values.
func (w *promWriter) sample(name string, v float64, labels ...string) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(labels[i])
			w.b.WriteString(`="`)
			w.b.WriteString(labelEscaper.Replace(labels[i+1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	w.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// writeMetrics renders every metric of the server, repositories sorted by
// name.
func (s *Server) writeMetrics() []byte {
	var w promWriter
	t := s.tab.Load()
	now := s.cfg.Now()
	type named struct {
		name string
		m    *repoMetrics
	}
	all := []named{{"", &s.other}}
	for _, r := range t.repos {
		all = append(all, named{r.cfg.Name, &r.m})
	}

	w.family("rrdp_proxy_requests_total", "counter", "Requests answered, by repository (empty: none), kind of file, format and status.")
	for _, n := range all {
		for k := range n.m.requests {
			for f := range n.m.requests[k] {
				for c := range n.m.requests[k][f] {
					if v := n.m.requests[k][f][c].Load(); v > 0 {
						w.sample("rrdp_proxy_requests_total", float64(v), "repo", n.name, "kind", kindNames[k], "format", formatNames[f], "code", codeName(c))
					}
				}
			}
		}
	}
	counter := func(name, help string, get func(*repoMetrics) uint64) {
		w.family(name, "counter", help)
		for _, n := range all {
			w.sample(name, float64(get(n.m)), "repo", n.name)
		}
	}
	counter("rrdp_proxy_response_bytes_total", "Body bytes sent.", func(m *repoMetrics) uint64 { return m.bytesOut.Load() })
	counter("rrdp_proxy_hits_total", "Requests for a file answered from memory.", func(m *repoMetrics) uint64 { return m.hits.Load() })
	counter("rrdp_proxy_misses_total", "Requests for a file the head does not name (pull-through).", func(m *repoMetrics) uint64 { return m.misses.Load() })
	counter("rrdp_proxy_pull_fetches_total", "Files fetched from the origin for pull-through.", func(m *repoMetrics) uint64 { return m.pullFetches.Load() })
	counter("rrdp_proxy_pull_shared_total", "Pull-through requests that waited for another request's fetch.", func(m *repoMetrics) uint64 { return m.pullShared.Load() })
	counter("rrdp_proxy_pull_notifications_total", "Origin notifications fetched to vouch for pull-through files.", func(m *repoMetrics) uint64 { return m.pullNotifications.Load() })
	counter("rrdp_proxy_pull_errors_total", "Failed pull-through fetches.", func(m *repoMetrics) uint64 { return m.pullErrors.Load() })
	counter("rrdp_proxy_catchup_total", "Requests for a file of a newer serial than the node's, served from the fleet's shared tier or after polling the origin.", func(m *repoMetrics) uint64 { return m.catchups.Load() })

	w.family("rrdp_proxy_state_serial", "gauge", "Serial of the state served; absent before the first.")
	w.family("rrdp_proxy_state_age_seconds", "gauge", "Time since the state served was published.")
	w.family("rrdp_proxy_state_ready", "gauge", "1 when the repository has a verified state.")
	for _, r := range t.repos {
		h := s.cfg.Cache.Head(r.cfg.Key)
		if h == nil {
			w.sample("rrdp_proxy_state_ready", 0, "repo", r.cfg.Name)
			continue
		}
		w.sample("rrdp_proxy_state_ready", 1, "repo", r.cfg.Name)
		w.sample("rrdp_proxy_state_serial", float64(h.Serial), "repo", r.cfg.Name)
		w.sample("rrdp_proxy_state_age_seconds", now.Sub(h.Time).Seconds(), "repo", r.cfg.Name)
	}

	w.family("rrdp_proxy_follow_syncs_total", "counter", "Notification fetches of the follower.")
	w.family("rrdp_proxy_follow_errors_total", "counter", "Follower failures by kind: sync (a poll failed), desync, backwards, delta (delta run abandoned for the snapshot).")
	w.family("rrdp_proxy_follow_last_success_seconds", "gauge", "Time since the follower's last successful poll.")
	for _, r := range t.repos {
		st, ok := r.followStats()
		if !ok {
			continue
		}
		w.sample("rrdp_proxy_follow_syncs_total", float64(st.Syncs), "repo", r.cfg.Name)
		for _, e := range followErrors(st) {
			w.sample("rrdp_proxy_follow_errors_total", float64(e.n), "repo", r.cfg.Name, "kind", e.kind)
		}
		if !st.LastSuccess.IsZero() {
			w.sample("rrdp_proxy_follow_last_success_seconds", now.Sub(st.LastSuccess).Seconds(), "repo", r.cfg.Name)
		}
	}

	cs := s.cfg.Cache.Stats()
	gauge := func(name, typ, help string, v float64) {
		w.family(name, typ, help)
		w.sample(name, v)
	}
	gauge("rrdp_proxy_cache_hits_total", "counter", "Cache blob reads answered from memory.", float64(cs.Hits))
	gauge("rrdp_proxy_cache_misses_total", "counter", "Cache blob reads that needed a fill.", float64(cs.Misses))
	gauge("rrdp_proxy_cache_fills_total", "counter", "Blobs filled from a lower tier.", float64(cs.Fills))
	gauge("rrdp_proxy_cache_shared_fills_total", "counter", "Misses that waited for another caller's fill.", float64(cs.Shared))
	gauge("rrdp_proxy_cache_fill_errors_total", "counter", "Fills that found the blob in no tier.", float64(cs.FillErrors))
	gauge("rrdp_proxy_cache_pinned_bytes", "gauge", "Bytes of the pinned current state.", float64(cs.PinnedBytes))
	gauge("rrdp_proxy_cache_cached_bytes", "gauge", "Bytes in the evictable part.", float64(cs.CachedBytes))
	gauge("rrdp_proxy_uptime_seconds", "gauge", "Time since the server started.", now.Sub(s.started).Seconds())
	return w.b.Bytes()
}

type followError struct {
	kind string
	n    uint64
}

func followErrors(st follow.Stats) []followError {
	return []followError{
		{"sync", st.Errors}, {"desync", st.Desyncs}, {"backwards", st.Backwards}, {"delta", st.DeltaFailures},
		{"reset", st.Resets}, {"start", st.StartFailures},
		{"unreachable", st.Unreachable}, {"timeout", st.Timeouts}, {"http_status", st.HTTPStatus},
		{"too_large", st.TooLarge}, {"truncated", st.Truncated}, {"redirect", st.Redirects},
		{"hash", st.HashMismatches}, {"invalid", st.Invalid}, {"cross_origin", st.CrossOrigin},
		{"store", st.StoreFailures},
	}
}
