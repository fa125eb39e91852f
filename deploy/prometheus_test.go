package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAlertRules checks the alert rules with promtool (syntax and its
// linter) and runs their unit tests (each alert fires on the series it is
// about, with its labels and annotations); a broken copy must fail.
func TestAlertRules(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	dir := "prometheus"
	if out, err := run(t, dir, nil, promtool, "check", "rules", "alerts.yml"); err != nil || !strings.Contains(string(out), "SUCCESS: 6 rules found") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(t, dir, nil, promtool, "test", "rules", "alerts_test.yml"); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	broken := strings.Replace(string(b), "rrdp_proxy_fleet_redis_up == 0", "rrdp_proxy_fleet_redis_up == = 0", 1)
	if broken == string(b) {
		t.Fatal("the rule to break is not in alerts.yml")
	}
	if err := os.WriteFile(filepath.Join(tmp, "alerts.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, tmp, nil, promtool, "check", "rules", "alerts.yml"); err == nil {
		t.Errorf("promtool accepted a broken expression:\n%s", out)
	}
}

// TestDashboard checks the Grafana dashboard's structure and every query
// with promtool, as recording rules (its PromQL parser), the dashboard's
// variables replaced by a match-all; the metric names are checked against
// a live scrape by proxy's TestDeployMetricNames.
func TestDashboard(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	b, err := os.ReadFile(filepath.Join("grafana", "rrdp-proxy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			GridPos struct{ X, Y, W, H int }
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard: uid %q, %d panels", d.UID, len(d.Panels))
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || len(p.Targets) == 0 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d %q: duplicate id, no query or no size", p.ID, p.Title)
		}
		ids[p.ID] = true
		for i, tg := range p.Targets {
			expr := tg.Expr
			for v := range vars {
				expr = strings.ReplaceAll(expr, "$"+v, ".*")
			}
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: a variable the dashboard does not define: %s", p.Title, tg.Expr)
			}
			q, _ := json.Marshal(expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d_%d\n        expr: %s\n", p.ID, i, q)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, dir, nil, promtool, "check", "rules", "dashboard.yml"); err != nil {
		t.Errorf("the dashboard's queries: %v\n%s", err, out)
	}
}
