package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestParseWrk parses wrk 4.1.0's output as captured on this project's
// machine (testdata/wrk): small and large bodies, latencies in us, ms and
// s, transfers in B, KB, MB and GB, socket errors and non-2xx answers.
func TestParseWrk(t *testing.T) {
	for _, tt := range []struct {
		file      string
		requests  int64
		duration  time.Duration
		bytes     float64
		reqPerSec float64
		bytesPerS float64
		p50, p99  time.Duration
		latMax    time.Duration
		errs      wrkErrors
		non2xx    int64
	}{
		{"small-kb.txt", 972, 2050 * time.Millisecond, 180.35 * 1024, 473.58, 87.87 * 1024,
			6570 * time.Microsecond, 48800 * time.Microsecond, 79630 * time.Microsecond, wrkErrors{}, 0},
		{"notification.txt", 18716, 2120 * time.Millisecond, 11.67 * 1024 * 1024, 8829.93, 5.51 * 1024 * 1024,
			4190 * time.Microsecond, 110930 * time.Microsecond, 163760 * time.Microsecond, wrkErrors{}, 0},
		{"big-mb.txt", 112, 2100 * time.Millisecond, 321 * 1024 * 1024, 53.42, 153.12 * 1024 * 1024,
			100120 * time.Microsecond, 339540 * time.Microsecond, 357860 * time.Microsecond, wrkErrors{}, 0},
		{"snapshot-seconds.txt", 19, 5360 * time.Millisecond, 461.65 * 1024 * 1024, 3.55, 86.15 * 1024 * 1024,
			2830 * time.Millisecond, 5380 * time.Millisecond, 5380 * time.Millisecond, wrkErrors{}, 0},
		{"snapshot-gb.txt", 11810, 3320 * time.Millisecond, 1.63 * 1024 * 1024 * 1024, 3556.72, 503.36 * 1024 * 1024,
			1710 * time.Microsecond, 226680 * time.Microsecond, 308400 * time.Microsecond, wrkErrors{}, 0},
		{"non2xx.txt", 762, 2050 * time.Millisecond, 386.95 * 1024, 371.67, 188.74 * 1024,
			7710 * time.Microsecond, 59540 * time.Microsecond, 91280 * time.Microsecond, wrkErrors{}, 762},
		{"socket-errors.txt", 0, 3030 * time.Millisecond, 0, 0, 0,
			0, 0, 0, wrkErrors{Read: 4}, 0},
	} {
		t.Run(tt.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", "wrk", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			r, err := parseWrk(out)
			if err != nil {
				t.Fatal(err)
			}
			near := func(name string, got, want float64) {
				t.Helper()
				if d := got - want; d > want*1e-9+1e-9 || -d > want*1e-9+1e-9 {
					t.Errorf("%s: got %v, want %v", name, got, want)
				}
			}
			if r.Requests != tt.requests {
				t.Errorf("requests: got %d, want %d", r.Requests, tt.requests)
			}
			near("duration", float64(r.Duration), float64(tt.duration))
			near("bytes", r.Bytes, tt.bytes)
			near("requests/sec", r.ReqPerSec, tt.reqPerSec)
			near("transfer/sec", r.BytesPerS, tt.bytesPerS)
			near("p50", float64(r.Percentile[50]), float64(tt.p50))
			near("p99", float64(r.Percentile[99]), float64(tt.p99))
			near("max latency", float64(r.LatMax), float64(tt.latMax))
			if len(r.Percentile) != 4 {
				t.Errorf("percentiles: got %v, want 50, 75, 90 and 99", r.Percentile)
			}
			if r.Errors != tt.errs {
				t.Errorf("socket errors: got %+v, want %+v", r.Errors, tt.errs)
			}
			if r.Non2xx3xx != tt.non2xx {
				t.Errorf("non-2xx: got %d, want %d", r.Non2xx3xx, tt.non2xx)
			}
		})
	}
}

func TestParseWrkRejects(t *testing.T) {
	for _, tt := range []struct{ name, out string }{
		{"empty", ""},
		{"usage", "Usage: wrk <options> <url>\n  Options:\n"},
		{"no latency distribution", "Requests/sec:   10.00\nTransfer/sec:    1.00KB\n"},
		{"bad unit", "  Latency Distribution\n     50%    1.71xs\n"},
		{"bad bytes", "  Latency Distribution\n     50%  1ms\n     90%  1ms\n     99%  1ms\nRequests/sec: 1\nTransfer/sec: 1.0QB\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseWrk([]byte(tt.out)); err == nil {
				t.Error("got no error, want one")
			}
		})
	}
}

func TestParseWrkUnits(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"635.91us", 635910 * time.Nanosecond},
		{"12.92ms", 12920 * time.Microsecond},
		{"1.02s", 1020 * time.Millisecond},
		{"1.50m", 90 * time.Second},
		{"1.00h", time.Hour},
	} {
		got, err := parseWrkTime(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseWrkTime(%q): got %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"0.00B", 0}, {"512.00B", 512}, {"1.50KB", 1536}, {"2.00MB", 2 << 20}, {"1.00GB", 1 << 30}, {"1.00TB", 1 << 40},
	} {
		got, err := parseWrkBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseWrkBytes(%q): got %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseWrkBytes("12"); !errors.Is(err, errWrkOutput) {
		t.Errorf("parseWrkBytes(%q): got %v, want errWrkOutput", "12", err)
	}
}

func TestSummary(t *testing.T) {
	run := func(rps float64, p99 time.Duration, max time.Duration, timeouts int64) *httpRun {
		return &httpRun{res: wrkResult{ReqPerSec: rps, BytesPerS: 2 * rps, Requests: 10, LatMax: max,
			Percentile: map[int]time.Duration{50: p99 / 2, 75: p99 / 2, 90: p99, 99: p99}, Errors: wrkErrors{Timeout: timeouts}}}
	}
	if s := summary(nil); s != nil {
		t.Errorf("summary of no runs: got %+v, want nil", s)
	}
	for _, tt := range []struct {
		name     string
		runs     []*httpRun
		rps      float64
		p99, max time.Duration
		requests int64
		errors   int64
	}{
		{"one", []*httpRun{run(100, time.Millisecond, 2*time.Millisecond, 0)}, 100, time.Millisecond, 2 * time.Millisecond, 10, 0},
		{"odd", []*httpRun{run(300, 3*time.Millisecond, 9*time.Millisecond, 1), run(100, time.Millisecond, time.Millisecond, 0),
			run(200, 5*time.Millisecond, 5*time.Millisecond, 2)}, 200, 3 * time.Millisecond, 9 * time.Millisecond, 30, 3},
		{"even", []*httpRun{run(100, time.Millisecond, time.Millisecond, 0), run(300, 3*time.Millisecond, 4*time.Millisecond, 0)},
			200, 2 * time.Millisecond, 4 * time.Millisecond, 20, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := summary(tt.runs)
			if s.ReqPerSec != tt.rps || s.BytesPerS != 2*tt.rps {
				t.Errorf("rates: got %v req/s, %v B/s, want %v, %v", s.ReqPerSec, s.BytesPerS, tt.rps, 2*tt.rps)
			}
			if s.Percentile[99] != tt.p99 || s.LatMax != tt.max {
				t.Errorf("latency: got p99 %v max %v, want %v, %v", s.Percentile[99], s.LatMax, tt.p99, tt.max)
			}
			if s.Requests != tt.requests || s.Errors.total() != tt.errors {
				t.Errorf("counts: got %d requests, %d errors, want %d, %d", s.Requests, s.Errors.total(), tt.requests, tt.errors)
			}
		})
	}
}
