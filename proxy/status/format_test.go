package status

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 s"},
		{0, "0 s"},
		{999 * time.Millisecond, "0 s"},
		{42 * time.Second, "42 s"},
		{59 * time.Second, "59 s"},
		{60 * time.Second, "1 min"},
		{3*time.Minute + 59*time.Second, "3 min"},
		{time.Hour, "1 h"},
		{2*time.Hour + 5*time.Minute + 30*time.Second, "2 h 5 min"},
		{24 * time.Hour, "1 d"},
		{4*24*time.Hour + 3*time.Hour + 59*time.Minute, "4 d 3 h"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{-1, "unknown"},
		{0, "0 B"},
		{999, "999 B"},
		{1000, "1.00 kB"},
		{12_345, "12.3 kB"},
		{999_499, "999 kB"},
		{999_500, "1.00 MB"},
		{187_400_000, "187 MB"},
		{1_500_000_000, "1.50 GB"},
		{1<<63 - 1, "9.22 EB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0"},
		{1234, "1234"},
		{12345, "12\u202f345"},
		{18_734_112, "18\u202f734\u202f112"},
	}
	for _, tt := range tests {
		if got := count(tt.n); got != tt.want {
			t.Errorf("count(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestHealth(t *testing.T) {
	now := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name string
		repo Repo
		want health
	}{
		{"no state", Repo{LastSuccess: ago(time.Second)}, healthNone},
		{"fresh", Repo{StateTime: ago(time.Hour), LastSuccess: ago(10 * time.Second)}, healthOK},
		{"quiet origin is not stale", Repo{StateTime: ago(48 * time.Hour), LastSuccess: ago(time.Minute)}, healthOK},
		{"just published, never polled", Repo{StateTime: ago(time.Minute)}, healthOK},
		{"at the threshold", Repo{StateTime: ago(time.Hour), LastSuccess: ago(3 * time.Minute)}, healthOK},
		{"past the threshold", Repo{StateTime: ago(time.Hour), LastSuccess: ago(3*time.Minute + time.Second)}, healthStale},
		{"longer interval", Repo{Interval: 5 * time.Minute, StateTime: ago(time.Hour), LastSuccess: ago(14 * time.Minute)}, healthOK},
		{"failed after success", Repo{StateTime: ago(time.Hour), LastSuccess: ago(time.Minute), LastError: ago(time.Second)}, healthRetrying},
		{"failed before success", Repo{StateTime: ago(time.Hour), LastSuccess: ago(time.Second), LastError: ago(time.Minute)}, healthOK},
		{"stale wins over retrying", Repo{StateTime: ago(time.Hour), LastSuccess: ago(time.Hour), LastError: ago(time.Second)}, healthStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.repo.health(now); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		hits, misses uint64
		want         string
	}{
		{0, 0, "–"},
		{1, 0, "100.0 %"},
		{9_000_000, 1_200, "99.9 %"},
		{1, 2, "33.3 %"},
		{2, 1, "66.6 %"},
	}
	for _, tt := range tests {
		if got := percent(ratio(tt.hits, tt.misses)); got != tt.want {
			t.Errorf("ratio(%d, %d) = %q, want %q", tt.hits, tt.misses, got, tt.want)
		}
	}
}
