package proxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
)

func TestOps(t *testing.T) {
	e := newEnv(t, ModeMirror)
	t.Run("readyz before the first head", func(t *testing.T) {
		resp, body := e.get("GET", "/readyz")
		if resp.StatusCode != 503 || !strings.Contains(string(body), "test") {
			t.Errorf("got %d %q, want 503 naming the repository", resp.StatusCode, body)
		}
		resp, _ = e.get("GET", e.path("notification.xml"))
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("notification before the first head: got %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
	h := e.sync()
	e.get("GET", e.path("notification.xml"))
	e.get("GET", e.path("notification.bin"))
	snap := fileOf(t, h, "snapshot", "xml")
	e.get("GET", e.path(snap.Path))

	t.Run("readyz after", func(t *testing.T) {
		if resp, body := e.get("GET", "/readyz"); resp.StatusCode != 200 {
			t.Errorf("got %d %q, want 200", resp.StatusCode, body)
		}
		if resp, _ := e.get("GET", "/healthz"); resp.StatusCode != 200 {
			t.Errorf("healthz: got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, body := e.get("GET", "/metrics")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		m := parseMetrics(t, string(body))
		for series, min := range map[string]float64{
			`rrdp_proxy_requests_total{code="200",format="xml",kind="notification",repo="test"}`: 1,
			`rrdp_proxy_requests_total{code="200",format="bin",kind="notification",repo="test"}`: 1,
			`rrdp_proxy_requests_total{code="200",format="xml",kind="snapshot",repo="test"}`:     1,
			`rrdp_proxy_requests_total{code="503",format="xml",kind="notification",repo="test"}`: 1,
			`rrdp_proxy_response_bytes_total{repo="test"}`:                                       float64(len(h.NotificationXML) + len(h.NotificationBin) + int(snap.Size)),
			`rrdp_proxy_state_serial{repo="test"}`:                                               float64(h.Serial),
			`rrdp_proxy_state_ready{repo="test"}`:                                                1,
			`rrdp_proxy_state_timestamp_seconds{repo="test"}`:                                    float64(h.Time.Unix()),
			`rrdp_proxy_follow_syncs_total{repo="test"}`:                                         1,
			`rrdp_proxy_follow_errors_total{kind="sync",repo="test"}`:                            0,
			`rrdp_proxy_follow_last_success_timestamp_seconds{repo="test"}`:                      float64(e.now.Unix()),
			`rrdp_proxy_follow_interval_seconds{repo="test"}`:                                    60,
			`rrdp_proxy_fleet_role{repo="test",role="standalone"}`:                               1,
			`rrdp_proxy_cache_operations_total{op="hit"}`:                                        1,
			`rrdp_proxy_cache_pinned_bytes`:                                                      float64(snap.Size),
			`rrdp_proxy_other_requests_total{code="503"}`:                                        1, // the first readyz
			`rrdp_proxy_request_duration_seconds_count{format="xml",kind="snapshot"}`:            1,
			`rrdp_proxy_request_duration_seconds_count{format="bin",kind="notification"}`:        1,
			`rrdp_proxy_build_info{goversion="` + runtime.Version() + `",version="dev"}`:         1,
			`go_goroutines`:                 1,
			`process_start_time_seconds`:    float64(e.now.Add(-time.Hour).Unix()),
			`process_resident_memory_bytes`: 1,
		} {
			v, ok := m[series]
			if !ok || v < min {
				t.Errorf("%s: got %v (present %v), want at least %v", series, v, ok, min)
			}
		}
		for series := range m {
			if strings.Contains(series, `repo=""`) {
				t.Errorf("%s: a series for no repository", series)
			}
			if strings.HasPrefix(series, "rrdp_proxy_other_") && strings.Contains(series, "format=") {
				t.Errorf("%s: a format label outside the repositories", series)
			}
			if strings.Contains(series, "_age_seconds") || strings.Contains(series, "uptime") {
				t.Errorf("%s: an age, where metrics give timestamps", series)
			}
		}
		// Every error kind the follower counts is in the HELP text and
		// exported.
		for _, k := range followErrors(follow.Stats{}) {
			if !strings.Contains(followErrorKinds, k.kind+" (") {
				t.Errorf("error kind %q missing from the HELP text", k.kind)
			}
			if _, ok := m[`rrdp_proxy_follow_errors_total{kind="`+k.kind+`",repo="test"}`]; !ok {
				t.Errorf("error kind %q not exported", k.kind)
			}
		}
		// HELP and TYPE once per family, before its samples.
		seen := map[string]int{}
		for _, line := range strings.Split(string(body), "\n") {
			if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
				name, _, _ := strings.Cut(f, " ")
				seen[name]++
			}
		}
		for name, n := range seen {
			if n != 1 {
				t.Errorf("family %s: %d TYPE lines, want 1", name, n)
			}
		}
	})
	t.Run("status.json", func(t *testing.T) {
		resp, body := e.get("GET", "/status.json")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		var rep struct {
			Ready bool `json:"ready"`
			Repos []struct {
				Name            string `json:"name"`
				Serial          uint64 `json:"serial"`
				Session         string `json:"session"`
				SnapshotXML     int64  `json:"snapshot_xml_bytes"`
				SnapshotBin     int64  `json:"snapshot_bin_bytes"`
				NotificationXML string `json:"notification_xml"`
				Requests        uint64 `json:"requests"`
			} `json:"repos"`
		}
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		if !rep.Ready || len(rep.Repos) != 1 || rep.Repos[0].Serial != h.Serial || rep.Repos[0].Session != h.Session ||
			rep.Repos[0].SnapshotXML != snap.Size || rep.Repos[0].SnapshotBin == 0 || rep.Repos[0].NotificationXML != e.base+"notification.xml" ||
			rep.Repos[0].Requests < 3 {
			t.Errorf("got %+v, want ready, serial %d, snapshot %d bytes, 3 requests or more", rep, h.Serial, snap.Size)
		}
	})
	t.Run("status", func(t *testing.T) {
		resp, body := e.get("GET", "/status")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "test") ||
			!strings.Contains(string(body), e.base+"notification.xml") {
			t.Errorf("got %d %s %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("index.json", func(t *testing.T) {
		_, body := e.get("GET", "/index.json")
		var idx struct {
			Repos []IndexEntry `json:"repositories"`
		}
		if err := json.Unmarshal(body, &idx); err != nil {
			t.Fatal(err)
		}
		want := IndexEntry{Name: "test", Mode: ModeMirror, Origin: e.notif, NotificationXML: e.base + "notification.xml",
			NotificationBin: e.base + "notification.bin", Serial: h.Serial, Session: h.Session}
		if len(idx.Repos) != 1 || idx.Repos[0] != want {
			t.Errorf("got %+v, want %+v", idx.Repos, want)
		}
		host := strings.TrimPrefix(e.origin.URL(), "https://")
		if !strings.HasPrefix(e.base, "https://"+e.addr+"/"+host+"rrdp/") {
			t.Errorf("mirror base %s: want https://%s/%srrdp/", e.base, e.addr, host)
		}
	})
	t.Run("mirror notification names the mirror", func(t *testing.T) {
		_, body := e.get("GET", e.path("notification.xml"))
		if !strings.Contains(string(body), `uri="`+e.base+h.Session+"/") || strings.Contains(string(body), e.origin.URL()) {
			t.Errorf("mirror notification: want every file at %s, none at the origin %s:\n%s", e.base, e.origin.URL(), body)
		}
		resp, body := e.get("GET", e.path(snap.Path))
		if resp.StatusCode != 200 || int64(len(body)) != snap.Size {
			t.Errorf("mirror snapshot: got %d with %d bytes", resp.StatusCode, len(body))
		}
	})
	t.Run("set repos", func(t *testing.T) {
		if err := e.srv.SetRepos(nil); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.get("GET", e.path("notification.xml")); resp.StatusCode != 404 {
			t.Errorf("removed repository: got %d, want 404", resp.StatusCode)
		}
		dup := []Repo{{Name: "a", Origin: e.notif, Mode: ModeMirror, Base: e.base}, {Name: "b", Origin: e.notif, Mode: ModeMirror, Base: e.base}}
		if err := e.srv.SetRepos(dup); err == nil {
			t.Errorf("two repositories on one route: got no error")
		}
		if err := e.srv.SetRepos([]Repo{{Name: "test", Origin: e.notif, Mode: ModeMirror, Base: e.base}}); err != nil {
			t.Fatal(err)
		}
		if resp, _ := e.get("GET", e.path("notification.xml")); resp.StatusCode != 200 {
			t.Errorf("added back: got %d, want 200", resp.StatusCode)
		}
	})
}

// parseMetrics reads the Prometheus text format: every line is a comment
// or "series value".
func parseMetrics(t *testing.T, s string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: not a sample", line)
		}
		m[line[:i]] = v
	}
	return m
}

func TestBaseURI(t *testing.T) {
	tests := []struct {
		mode           Mode
		origin, public string
		want           string
		err            bool
	}{
		{ModeReverse, "https://rrdp.example.net/rrdp/notification.xml", "", "https://rrdp.example.net/rrdp/", false},
		{ModeReverse, "https://RRDP.example.net:8443/notification.xml", "", "https://rrdp.example.net:8443/", false},
		{ModeReverse, "https://rrdp.example.net/a/b/notification.xml", "https://edge.example.org", "https://edge.example.org/a/b/", false},
		{ModeMirror, "https://rrdp.example.net/rrdp/notification.xml", "https://mirror.example.org/", "https://mirror.example.org/rrdp.example.net/rrdp/", false},
		{ModeMirror, "https://localhost:3000/rrdp/notification.xml", "https://m.example/pre/", "https://m.example/pre/localhost:3000/rrdp/", false},
		{ModeMirror, "https://rrdp.example.net/rrdp/notification.xml", "", "", true},
		{ModeReverse, "rsync://rrdp.example.net/x", "", "", true},
		{"other", "https://rrdp.example.net/notification.xml", "", "", true},
	}
	for _, tt := range tests {
		got, err := BaseURI(tt.mode, tt.origin, tt.public)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("BaseURI(%s, %s, %q): got %q, %v; want %q, error %v", tt.mode, tt.origin, tt.public, got, err, tt.want, tt.err)
		}
	}
}

// TestAccessLog checks the debug log of requests.
func TestAccessLog(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	var buf syncBuffer
	srv, err := New(Config{Cache: e.cache, Repos: []Repo{{Name: "test", Origin: e.notif, Base: e.base}},
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := request(e, e.path("notification.xml"))
	srv.Handler()(ctx)
	if got := buf.String(); !strings.Contains(got, "msg=request repo=test method=GET") || !strings.Contains(got, "path="+e.path("notification.xml")+" status=200") {
		t.Errorf("log: got %q, want the request with its status", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSetReposConcurrent reloads the repositories while requests, metrics
// and status pages are served (meant for -race); every notification
// request gets 200.
func TestSetReposConcurrent(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, p := range []string{e.path("notification.xml"), "/metrics", "/status.json"} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx := request(e, p)
				e.srv.Handler()(ctx)
				if ctx.Response.StatusCode() != 200 {
					bad.Add(1)
				}
			}
		})
	}
	for i := range 200 {
		r := Repo{Name: "test", Origin: e.notif, Base: e.base, Interval: time.Duration(i+1) * time.Second, Stats: e.follower.Stats}
		if err := e.srv.SetRepos([]Repo{r}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d requests during reloads got another status than 200", n)
	}
}

// TestReadiness: /readyz is 503 while a repository is still starting (no
// state, first poll not ended), and 200 once every repository has a state
// or a failing origin, naming the failing ones; /readyz?repo=NAME answers
// for one repository.
func TestReadiness(t *testing.T) {
	dead, err := follow.New(follow.Config{URL: "https://127.0.0.1:1/rrdp/notification.xml", Store: follow.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	deadRepo := Repo{Name: "dead", Origin: "https://127.0.0.1:1/rrdp/notification.xml", Mode: ModeMirror, Stats: dead.Stats}
	e := newEnvConfig(t, ModeMirror, tlsNone, func(c *Config) {
		var err error
		if deadRepo.Base, err = BaseURI(ModeMirror, deadRepo.Origin, "https://mirror.example.net/"); err != nil {
			t.Fatal(err)
		}
		c.Repos = append(c.Repos, deadRepo)
	})
	check := func(path string, code int, wants ...string) {
		t.Helper()
		resp, body := e.get("GET", path)
		if resp.StatusCode != code {
			t.Errorf("%s: got %d %q, want %d", path, resp.StatusCode, body, code)
		}
		for _, w := range wants {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: got %q, want it to say %q", path, body, w)
			}
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
		}
	}
	check("/readyz", 503, "starting", "test", "dead")
	if _, err := dead.Sync(context.Background()); err == nil {
		t.Fatal("sync of a closed port: got no error")
	}
	check("/readyz", 503, "starting: no verified state yet: test\n", "origin failing: dead")
	e.sync()
	check("/readyz", 200, "ready\n", "origin failing: dead")
	check("/readyz?repo=test", 200, "ready")
	check("/readyz?repo=dead", 503, "no verified state yet", "127.0.0.1:1")
	check("/readyz?repo=nope", 404, `"nope"`)

	// Past the grace, a repository whose first poll never ended no longer
	// holds the node back.
	s, err := New(Config{Cache: e.cache, StartupGrace: time.Nanosecond,
		Repos: []Repo{{Name: "silent", Origin: deadRepo.Origin, Mode: ModeMirror, Base: deadRepo.Base}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	time.Sleep(time.Millisecond) // the grace is a nanosecond
	if code, body := s.readyz(nil); code != 200 || !strings.Contains(string(body), "origin failing: silent") {
		t.Errorf("past the grace: got %d %q, want 200 naming silent", code, body)
	}
}
