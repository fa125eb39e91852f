package validate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestMeasureNode measures what validation costs the node on a repository
// made by rrdp-proxy gen (RRDP_PROXY_VALIDATE_REPO=DIR, copied first, e.g.
// /work/data/paper-10kca): in observe and in gate mode, the first
// validation (reading the snapshot, every publication point checked) and
// the revalidation after a serial that changes one CA (one ROA of the
// largest point corrupted, so that the point fails); with the sync times,
// which in gate mode include the gate. The VRPs of the first state must
// equal the generator's expected-vrps.csv.
func TestMeasureNode(t *testing.T) {
	dir := os.Getenv("RRDP_PROXY_VALIDATE_REPO")
	if dir == "" {
		t.Skip("set RRDP_PROXY_VALIDATE_REPO to a directory made by rrdp-proxy gen")
	}
	want, err := rp.ReadVRPCSV(filepath.Join(dir, "expected-vrps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, gate := range []bool{false, true} {
		name := map[bool]string{false: "observe", true: "gate"}[gate]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			g := newRig(t, ctx, rigConfig{From: dir, Validate: validate.Config{Gate: gate, Rules: validate.Rules{MaxVRPLoss: 0.05, CAInvalid: false}}})
			t.Logf("%s: load average %s", name, loadavg())
			start := time.Now()
			if _, err := g.f.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			sync1 := time.Since(start)
			g.waitRuns(1)
			st := g.v.Status()
			t.Logf("%s: first state: sync %v, validation %v (reading the snapshot included): %d VRPs, %d CAs, points checked %d, reused %d; load average %s",
				name, sync1.Round(time.Millisecond), st.Runs[0].Duration.Round(time.Millisecond), st.VRPs, st.CAs, st.Revalidated, st.Reused, loadavg())
			if d := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), rpki.SortVRPs(want), 10); d != "" {
				t.Fatalf("first state: /vrps.json differs from expected-vrps.csv:\n%s", d)
			}
			broken := g.breakROAs(func(_, _, points int) bool { return points == 1 })
			start = time.Now()
			_, err := g.f.Sync(ctx)
			sync2 := time.Since(start)
			if gate && errors.Is(err, validate.ErrHeld) {
				// paper-1ca: its one CA holds every ROA.
				t.Logf("%s: the serial changing one CA is held (%v) in %v", name, err, sync2.Round(time.Millisecond))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g.waitRuns(2)
			st = g.v.Status()
			run := st.Runs[0]
			t.Logf("%s: a serial changing one CA (%s): sync %v, validation %v (reading %v): %d VRPs (-%d), points checked %d, reused %d; load average %s",
				name, strings.Join(broken, " "), sync2.Round(time.Millisecond), run.Duration.Round(time.Millisecond), run.Read.Round(time.Millisecond), run.VRPs, run.Removed, st.Revalidated, st.Reused, loadavg())
			if run.Removed == 0 || st.FailingCAs != 1 {
				t.Errorf("after the serial: %d removed, %d failing CAs, want some and 1", run.Removed, st.FailingCAs)
			}
		})
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
