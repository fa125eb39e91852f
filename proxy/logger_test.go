package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestFasthttpLoggerLimits: a flood of malformed requests logs a burst,
// then nothing until tokens come back, and the next line counts what was
// dropped; the client's bytes echoed are cut.
func TestFasthttpLoggerLimits(t *testing.T) {
	var buf bytes.Buffer
	f := newFasthttpLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	long := strings.Repeat("A", 5000)
	for range 1000 {
		f.Printf("error when serving connection %q: %s", "1.2.3.4:5", long)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < logBurst || len(lines) > logBurst+2 {
		t.Fatalf("1000 messages at once: got %d lines, want about %d", len(lines), logBurst)
	}
	for _, l := range lines {
		if len(l) > logMax+200 {
			t.Errorf("line of %d bytes, want the message cut to %d: %.100s", len(l), logMax, l)
		}
	}
	f.mu.Lock()
	dropped := f.dropped
	f.tokens = 1 // as if a second had passed
	f.mu.Unlock()
	if dropped < 900 {
		t.Errorf("dropped: got %d, want the rest of the 1000", dropped)
	}
	buf.Reset()
	f.Printf("one more")
	if !strings.Contains(buf.String(), "suppressed=") {
		t.Errorf("the line after a flood: got %q, want the count suppressed", buf.String())
	}
}
