package proxy

import "testing"

func TestParseRange(t *testing.T) {
	tests := []struct {
		h          string
		size       int64
		start, end int64
		ok, valid  bool
	}{
		{"bytes=0-9", 100, 0, 10, true, true},
		{"bytes=90-200", 100, 90, 100, true, true},
		{"bytes=50-", 100, 50, 100, true, true},
		{"bytes=-10", 100, 90, 100, true, true},
		{"bytes=-200", 100, 0, 100, true, true},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=0-0", 0, 0, 0, false, true},
		{"bytes=5-4", 100, 0, 0, false, false},
		{"bytes=0-1,3-4", 100, 0, 0, false, false},
		{"items=0-9", 100, 0, 0, false, false},
		{"bytes=x-9", 100, 0, 0, false, false},
		{"bytes=9", 100, 0, 0, false, false},
		{"bytes=99999999999999999999-", 100, 0, 0, false, false},
	}
	for _, tt := range tests {
		start, end, ok, valid := parseRange([]byte(tt.h), tt.size)
		if start != tt.start || end != tt.end || ok != tt.ok || valid != tt.valid {
			t.Errorf("parseRange(%q, %d): got %d, %d, %v, %v; want %d, %d, %v, %v",
				tt.h, tt.size, start, end, ok, valid, tt.start, tt.end, tt.ok, tt.valid)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		h    string
		want bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"br, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=0.001", true},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"identity", false},
		{"deflate, br", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip([]byte(tt.h)); got != tt.want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestETagMatch(t *testing.T) {
	tag := []byte(`"abc"`)
	tests := []struct {
		list string
		want bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"ab"`, false},
		{`abc`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := etagMatch([]byte(tt.list), tag, true); got != tt.want {
			t.Errorf("etagMatch(%q): got %v, want %v", tt.list, got, tt.want)
		}
	}
}

// FuzzParseRange checks that a satisfiable range lies within the body.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=7-", "bytes=1-2,3-4", "bytes=99-1"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		start, end, ok, valid := parseRange([]byte(h), size)
		if ok && (!valid || start < 0 || start >= end || end > size) {
			t.Errorf("parseRange(%q, %d): range [%d, %d) outside the body", h, size, start, end)
		}
		acceptsGzip([]byte(h))
		etagMatch([]byte(h), []byte(`"x"`), true)
	})
}
