package status

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, fixture()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"node", "version", "started", "now", "uptime_seconds", "ready", "requests", "bytes_out", "cache", "repos"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("top level lacks %q", key)
		}
	}
	if got, want := doc["uptime_seconds"], float64(2*86400+5*3600+7*60); got != want {
		t.Errorf("uptime_seconds: got %v, want %v", got, want)
	}
	repos := doc["repos"].([]any)
	var names []string
	for _, x := range repos {
		rp := x.(map[string]any)
		names = append(names, rp["name"].(string))
		for _, key := range []string{"state_time", "last_success", "last_error_time"} {
			v, ok := rp[key]
			if !ok {
				t.Errorf("%s lacks %q", rp["name"], key)
				continue
			}
			if v == nil {
				continue
			}
			s := v.(string)
			tm, err := time.Parse(time.RFC3339, s)
			if err != nil || tm.Location() != time.UTC || s[len(s)-1] != 'Z' {
				t.Errorf("%s %s = %q, want RFC 3339 in UTC", rp["name"], key, s)
			}
		}
		if _, ok := rp["errors"].(map[string]any); !ok {
			t.Errorf("%s: errors is %T, want an object", rp["name"], rp["errors"])
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("repos not in name order: %v", names)
	}
	health := map[string]string{}
	for _, x := range repos {
		rp := x.(map[string]any)
		health[rp["name"].(string)] = rp["health"].(string)
	}
	want := map[string]string{"ripe": "ok", "arin": "retrying", "lacnic": "stale", "krill-ca": "no_state"}
	for name, h := range want {
		if health[name] != h {
			t.Errorf("%s health: got %q, want %q", name, health[name], h)
		}
	}
}

// TestJSONTimesInUTC gives times in another zone: they come out in UTC.
func TestJSONTimesInUTC(t *testing.T) {
	r := fixture()
	zone := time.FixedZone("CET", 3600)
	r.Now = r.Now.In(zone)
	r.Started = r.Started.In(zone)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"now": "2026-11-30T14:00:00Z"`)) {
		t.Errorf("now not rendered in UTC:\n%s", buf.Bytes()[:200])
	}
}
