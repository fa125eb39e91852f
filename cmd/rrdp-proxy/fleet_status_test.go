package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// statusJSON is the part of /status.json the fleet test reads.
type statusJSON struct {
	RedisUp *bool `json:"redis_up"`
	Repos   []struct {
		Name      string            `json:"name"`
		Role      string            `json:"role"`
		Holder    string            `json:"holder"`
		LastError string            `json:"last_error"`
		Errors    map[string]uint64 `json:"errors"`
	} `json:"repos"`
}

// TestFleetStatus runs two fleet nodes on a real Redis in front of a real
// origin that answers 500: the holder's last error and error counts show
// on both nodes, in /status.json and /metrics, with each node's role and
// the holder's name; the operator pages are on the admin listener only.
func TestFleetStatus(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer origin.Close()
	redisAddr := redistest.Start(t).Addr()
	type fleetNode struct {
		name  string
		s     *running
		admin string // http://admin address
	}
	var nodes []fleetNode
	for i := range 2 {
		name := fmt.Sprintf("node-%d", i)
		aln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		adminAddr := aln.Addr().String()
		file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
		s := serveWith(t, file, serveOptions{Listeners: map[string]net.Listener{adminAddr: aln}}, func(addr string) {
			doc := fmt.Sprintf(`[server]
listen = [%q]
admin_listen = %q
mirror_base = "https://%s/"
node = %q
[cache]
memory = "64MiB"
[cache.redis]
url = "redis://%s/0"
lease_ttl = "3s"
[[repository]]
name = "broken"
origin = "%s/rrdp/notification.xml"
mode = "mirror"
poll_interval = "1s"
max_backoff = "2s"
`, addr, adminAddr, addr, name, redisAddr, origin.URL)
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
		})
		nodes = append(nodes, fleetNode{name, s, "http://" + adminAddr})
	}

	// Both nodes show the origin's failure, whichever holds the lease.
	var holder string
	deadline := time.Now().Add(time.Minute)
	for _, n := range nodes {
		for {
			code, body, err := try(n.admin + "/status.json")
			var st statusJSON
			if err == nil && code == 200 && json.Unmarshal(body, &st) == nil && len(st.Repos) == 1 {
				r := st.Repos[0]
				if r.Holder != "" && strings.Contains(r.LastError, "500") && r.Errors["http_status"] > 0 && st.RedisUp != nil && *st.RedisUp {
					want := "follower"
					if r.Holder == n.name {
						want = "holder"
					}
					if r.Role != want {
						t.Errorf("%s: role %q with holder %q, want %q", n.name, r.Role, r.Holder, want)
					}
					if holder != "" && r.Holder != holder {
						t.Errorf("%s names holder %q, the other node %q", n.name, r.Holder, holder)
					}
					holder = r.Holder
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /status.json does not show the holder's error within a minute: %d %s %v\nlog:\n%s", n.name, code, body, err, n.s.log)
			}
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	if holder != "node-0" && holder != "node-1" {
		t.Fatalf("holder %q", holder)
	}
	for _, n := range nodes {
		role := "follower"
		if n.name == holder {
			role = "holder"
		}
		code, body := get(t, n.admin+"/metrics")
		m := string(body)
		for _, want := range []string{
			`rrdp_proxy_fleet_role{repo="broken",role="` + role + `"} 1`,
			`rrdp_proxy_fleet_holder_info{holder="` + holder + `",repo="broken"} 1`,
			`rrdp_proxy_fleet_redis_up 1`,
			`rrdp_proxy_state_ready{repo="broken"} 0`,
		} {
			if code != 200 || !strings.Contains(m, want+"\n") {
				t.Errorf("%s /metrics: no %s", n.name, want)
			}
		}
		for _, want := range []string{`rrdp_proxy_follow_errors_total{kind="http_status",repo="broken"} `, `rrdp_proxy_follow_last_error_timestamp_seconds{repo="broken"} `} {
			i := strings.Index(m, want)
			if i < 0 || strings.HasPrefix(m[i+len(want):], "0\n") {
				t.Errorf("%s /metrics: %s absent or zero", n.name, want)
			}
		}
		if code, _ := get(t, n.s.base+"/metrics"); code != http.StatusNotFound {
			t.Errorf("%s: public /metrics with admin_listen: got %d, want 404", n.name, code)
		}
		if code, _ := get(t, n.s.base+"/status.json"); code != http.StatusNotFound {
			t.Errorf("%s: public /status.json with admin_listen: got %d, want 404", n.name, code)
		}
		code, body = get(t, n.admin+"/status")
		if code != 200 || !strings.Contains(string(body), "500") || !strings.Contains(string(body), role) {
			t.Errorf("%s /status: got %d, without the error or the role %s", n.name, code, role)
		}
	}
	for _, n := range nodes {
		n.s.stop(t)
	}
}
