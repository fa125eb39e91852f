package validate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/validate"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestMeasureNode measures what validation costs the node on a repository
// made by rrdp-proxy gen (RRDP_PROXY_VALIDATE_REPO=DIR, copied first, e.g.
// /work/data/paper-10kca): in observe and in gate mode, the first
// validation (reading the snapshot, every publication point checked) and
// the revalidation after a serial that changes one CA (one ROA of the
// largest point corrupted, so that the point fails); with the sync times,
// which in gate mode include the gate. The VRPs of the first state must
// equal the generator's expected-vrps.csv.
//
// Memory: in observe mode the Validator's Run starts only once the sync
// returned, so that the peak RSS (VmHWM) of the sync alone (the follower
// and the cache: what the node costs without validation) and that of the
// first validation are apart; the test reports both, the bytes the cache
// pins (the served state), the live heap after the first run (after a
// GC) and the validation's addition to the node's peak against the served
// bytes. RRDP_PROXY_MEASURE_MODES (observe,gate) picks the modes;
// RRDP_PROXY_HEAP_PROFILE=FILE writes a heap profile after the first
// validation of the first mode, for go tool pprof.
func TestMeasureNode(t *testing.T) {
	dir := os.Getenv("RRDP_PROXY_VALIDATE_REPO")
	if dir == "" {
		t.Skip("set RRDP_PROXY_VALIDATE_REPO to a directory made by rrdp-proxy gen")
	}
	want, err := rp.ReadVRPCSV(filepath.Join(dir, "expected-vrps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	modes := os.Getenv("RRDP_PROXY_MEASURE_MODES")
	if modes == "" {
		modes = "observe,gate"
	}
	profile := os.Getenv("RRDP_PROXY_HEAP_PROFILE")
	for _, gate := range []bool{false, true} {
		name := map[bool]string{false: "observe", true: "gate"}[gate]
		if !slices.Contains(strings.Split(modes, ","), name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			// In gate mode the sync validates (its PutHead): no apart.
			g := newRig(t, ctx, rigConfig{From: dir, DeferRun: !gate, Validate: validate.Config{Gate: gate, Rules: validate.Rules{MaxVRPLoss: 0.05, CAInvalid: false}}})
			t.Logf("%s: load average %s", name, loadavg())
			before := resetPeakRSS(t)
			start := time.Now()
			if _, err := g.f.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			sync1 := time.Since(start)
			gc0 := gcs()
			syncPeak, afterSync := peakRSS(t), currentRSS(t)
			served := g.cache.Stats().PinnedBytes
			if h := g.cache.Head("repo"); h != nil {
				for _, f := range h.Files {
					if f.Kind == rrdpxml.KindSnapshot && f.Format == irpki.FormatBin && !f.Gzip && f.Serial == h.Serial {
						t.Logf("%s: first state: %s, %d bytes, composite %v", name, f.Path, f.Size, f.Composite())
					}
				}
			}
			if !gate {
				if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
					t.Fatal(err)
				}
				g.startRun()
			}
			cpu, alloc := cpuTime(syscall.RUSAGE_SELF), totalAlloc()
			g.waitRuns(1)
			cpu, alloc = cpuTime(syscall.RUSAGE_SELF)-cpu, totalAlloc()-alloc
			runPeak := peakRSS(t)
			st := g.v.Status()
			t.Logf("%s: first state: sync %v, validation %v (reading the snapshot %v included; process CPU %v from the sync's end to the run's), allocated %s, GCs %d: %d VRPs, %d CAs, points checked %d, reused %d; load average %s",
				name, sync1.Round(time.Millisecond), st.Runs[0].Duration.Round(time.Millisecond), st.Runs[0].Read.Round(time.Millisecond), cpu.Round(time.Millisecond), mib(int64(alloc)), gcs()-gc0, st.VRPs, st.CAs, st.Revalidated, st.Reused, loadavg())
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if gate {
				t.Logf("%s: first state: memory: served (pinned) %s; RSS before %s, peak of the sync (the gate's validation included) %s, after the run %s; live heap after the run %s",
					name, mib(served), mib(before), mib(syncPeak), mib(currentRSS(t)), mib(int64(ms.HeapAlloc)))
			} else {
				t.Logf("%s: first state: memory: served (pinned) %s; RSS before %s, peak of the sync %s, after it %s; peak of the first validation %s (%+.0f MiB over the sync's peak: %.2f of the served bytes), after it %s; live heap after the run %s",
					name, mib(served), mib(before), mib(syncPeak), mib(afterSync), mib(runPeak), float64(runPeak-syncPeak)/(1<<20), float64(runPeak-syncPeak)/float64(served),
					mib(currentRSS(t)), mib(int64(ms.HeapAlloc)))
			}
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					t.Fatal(err)
				}
				if err := pprof.WriteHeapProfile(f); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				profile = ""
			}
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

// gcs returns the garbage collections completed so far.
func gcs() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

// totalAlloc returns the bytes allocated on the heap so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}
