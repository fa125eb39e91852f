package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serveAdmin starts e.srv's admin listener and returns its base URL.
func serveAdmin(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.ServeAdmin(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve admin: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := testHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

var testHTTP = &http.Client{Timeout: 30 * time.Second}

// TestAdminListener: with AdminOnly the public listener answers 404
// (no-store) for every operator page and still serves the repository; the
// admin listener serves the pages, and pprof when asked.
func TestAdminListener(t *testing.T) {
	e := newEnvConfig(t, ModeMirror, tlsNone, func(c *Config) { c.AdminOnly, c.PProf = true, true })
	admin := serveAdmin(t, e)
	e.sync()
	for _, p := range opsPaths {
		t.Run(p, func(t *testing.T) {
			resp, _ := e.get("GET", p)
			if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("public %s: got %d, Cache-Control %q; want 404, no-store", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			want := 200
			if p == "/vrps.json" {
				want = 404 // no Config.Validation: proxy/validate tests it
			}
			resp, body := httpGet(t, admin+p)
			if resp.StatusCode != want || len(body) == 0 {
				t.Errorf("admin %s: got %d with %d bytes, want %d", p, resp.StatusCode, len(body), want)
			}
		})
	}
	if resp, _ := e.get("GET", "/debug/pprof/"); resp.StatusCode != 404 {
		t.Errorf("public pprof: got %d, want 404", resp.StatusCode)
	}
	if resp, body := httpGet(t, admin+"/debug/pprof/"); resp.StatusCode != 200 || !bytes.Contains(body, []byte("goroutine")) {
		t.Errorf("admin pprof index: got %d %.200q", resp.StatusCode, body)
	}
	if resp, body := httpGet(t, admin+"/debug/pprof/goroutine?debug=1"); resp.StatusCode != 200 || !bytes.Contains(body, []byte("goroutine profile")) {
		t.Errorf("admin pprof goroutine: got %d %.200q", resp.StatusCode, body)
	}
	if resp, _ := e.get("GET", e.path("notification.xml")); resp.StatusCode != 200 {
		t.Errorf("public notification: got %d, want 200", resp.StatusCode)
	}
	if resp, _ := httpGet(t, admin+e.path("notification.xml")); resp.StatusCode != 404 {
		t.Errorf("admin notification: got %d, want 404 (the admin listener serves no repository)", resp.StatusCode)
	}
}

// TestAdminNoPProf: without PProf the admin listener has no pprof, and
// without AdminOnly the public listener keeps the operator pages.
func TestAdminNoPProf(t *testing.T) {
	e := newEnv(t, ModeMirror)
	admin := serveAdmin(t, e)
	if resp, _ := httpGet(t, admin+"/debug/pprof/"); resp.StatusCode != 404 {
		t.Errorf("admin pprof without PProf: got %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.get("GET", "/metrics"); resp.StatusCode != 200 {
		t.Errorf("public /metrics without AdminOnly: got %d, want 200", resp.StatusCode)
	}
}

// TestPromtool checks a live scrape with Prometheus's own linter, after
// requests of every kind and a sync, so that every family has samples.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (Debian package prometheus; CI is set, so this is a failure)")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	e := newEnv(t, ModeMirror)
	h := e.sync()
	e.srv.ObserveSync("test", 1500*time.Millisecond, nil)
	e.get("GET", e.path("notification.xml"))
	e.get("GET", e.path(fileOf(t, h, "snapshot", "bin").Path))
	e.get("GET", e.path("nothing-here"))
	e.get("GET", "/nothing")
	resp, body := e.get("GET", "/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: got %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// The linter speaks up: a broken exposition makes it fail.
	bad := append(bytes.Clone(body), "rrdp_proxy_bad_total{repo=\"x\"} 1\nrrdp_proxy_bad_total{repo=\"x\"} 2\n"...)
	cmd = exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(bad)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a duplicate series:\n%s", out)
	}
	for _, want := range []string{
		`rrdp_proxy_follow_sync_duration_seconds_bucket{repo="test",result="ok",le="2.5"} 1`,
		`rrdp_proxy_request_duration_seconds_count{format="xml",kind="notification"} 1`,
		`rrdp_proxy_request_duration_seconds_count{format="xml",kind="other"} 1`,
		`rrdp_proxy_other_requests_total{code="404"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

// TestDeployMetricNames: every metric the alert rules and the Grafana
// dashboard in deploy/ query is one the server exports (a family in a live
// scrape, or a family of the server's collector that has no sample in
// this test, such as the disk tier's bytes).
func TestDeployMetricNames(t *testing.T) {
	e := newEnvConfig(t, ModeMirror, tlsNone, func(c *Config) {
		c.Fleet = func(string) (FleetStatus, bool) {
			return FleetStatus{Role: RoleHolder, Holder: "n", RedisUp: true}, true
		}
	})
	e.sync()
	e.srv.ObserveSync("test", time.Second, nil)
	e.get("GET", e.path("notification.xml"))
	_, body := e.get("GET", "/metrics")
	have := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ := strings.Cut(f, " ")
			have[name] = true
		}
	}
	ch := make(chan *prometheus.Desc, 100)
	serverCollector{e.srv}.Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			have[m[1]] = true
		}
	}
	name := regexp.MustCompile(`\b(?:rrdp_proxy|process|go)_[a-z_]+`)
	for _, file := range []string{"../deploy/prometheus/alerts.yml", "../deploy/prometheus/alerts_test.yml", "../deploy/grafana/rrdp-proxy.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range name.FindAllString(string(b), -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(m, suffix); ok && have[s] {
					base = s
				}
			}
			if !have[base] {
				t.Errorf("%s queries %s, which the server does not export", file, m)
			}
			n++
		}
		if n == 0 {
			t.Errorf("%s names no metric", file)
		}
	}
}
