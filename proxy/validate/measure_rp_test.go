package validate_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestMeasureNodeVsRPKIClient measures, in one run and on one tree, the
// node's validation against rpki-client 8.2's, on a copy of a repository
// made by rrdp-proxy gen (RRDP_PROXY_VALIDATE_REPO=DIR; its base URL
// https://localhost:PORT/, where the copy is served for rpki-client; the
// rig copies it into its temporary directory, so set TMPDIR for a big
// one). Steps, each with rpki-client's run on the same state:
//
//  1. the first state: rpki-client from an empty cache (fetching the
//     snapshot, validating everything), then rpki-client -n on that
//     cache (validating only); the node's sync and first validation
//     (reading its snapshot.bin, every publication point checked);
//  2. the serial that rrdp-proxy gen --advance 1 makes (repotest's
//     Advance on the copy, with the key cache of RRDP_PROXY_KEY_CACHE or
//     rrdp-proxy gen's default): the node's revalidation; rpki-client's
//     run fetching the delta, which validates everything again;
//  3. a serial changing one CA (one ROA of the largest publication point
//     corrupted, as TestMeasureNode does): the same.
//
// Peak RSS: the node's is this process's VmHWM (the follower, the cache
// and the server with the Validator: the whole node), reset before each
// step and again when the sync returns (in observe mode the validation
// starts as the sync stores the head, so the first peak may include its
// first moments); rpki-client's is the largest sum of the RSS of its processes,
// sampled every 200 ms (ru_maxrss of the children would count this
// process's RSS, which a child has between fork and exec). The VRPs of
// each step must equal the generator's and rpki-client's. CPU times:
// rpki-client's processes' (RUSAGE_CHILDREN), and this process's from the
// sync's start to the run's end (the in-process origins included).
func TestMeasureNodeVsRPKIClient(t *testing.T) {
	dir := os.Getenv("RRDP_PROXY_VALIDATE_REPO")
	if dir == "" {
		t.Skip("set RRDP_PROXY_VALIDATE_REPO to a directory made by rrdp-proxy gen")
	}
	rp.Require(t, "root", "unshare", "mount", "rpki-client")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	public := baseOf(t, dir)
	u, err := url.Parse(public)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || u.Hostname() != "localhost" {
		t.Fatalf("base URL %s: want https://localhost:PORT/", public)
	}

	t.Logf("copying %s; load average %s", dir, loadavg())
	g := newRig(t, ctx, rigConfig{From: dir})
	t.Logf("copied into %s; load average %s", g.dir, loadavg())
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: g.dir, PKI: g.pki, Port: port, PortWait: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	rcOpts := rp.Options{TAL: filepath.Join(g.dir, repotest.TALPath), CAFile: g.pki.CAFile, CacheDir: t.TempDir(), Args: []string{"-s", "3600"}}
	want := func() []rpki.VRP {
		vs, err := rp.ReadVRPCSV(filepath.Join(g.dir, repotest.VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		return rpki.SortVRPs(vs)
	}
	rpkiClient := func(step string, args ...string) time.Duration {
		t.Helper()
		o := rcOpts
		o.Args = append(o.Args, args...)
		load := loadavg()
		stop := sampleChildrenRSS()
		cpu := cpuTime(syscall.RUSAGE_CHILDREN)
		res, err := rp.RunRPKIClient(ctx, o)
		cpu = cpuTime(syscall.RUSAGE_CHILDREN) - cpu
		sum := stop()
		if err != nil {
			t.Fatalf("%s: rpki-client: %v", step, err)
		}
		// -n logs "using cache" for every repository: only the VRPs count.
		if err := res.Err(); err != nil && len(args) == 0 {
			t.Errorf("%s: rpki-client: %v", step, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, want(), 10); d != "" {
			t.Errorf("%s: rpki-client's VRPs differ from the generator's:\n%s", step, d)
		}
		t.Logf("%s: rpki-client %s: %v (CPU %v), %d VRPs; peak RSS %s (sum of its processes, sampled); load average %s, after %s",
			step, strings.Join(append([]string{"-s", "3600"}, args...), " "), res.Elapsed.Round(time.Millisecond), cpu.Round(time.Millisecond), len(res.VRPs),
			mib(sum), load, loadavg())
		return res.Elapsed
	}
	// node syncs the rig's follower and waits for validation run n; it
	// returns the run's time (reading the state included) and the time
	// from the start of the sync to the run's end.
	node := func(step string, n int) (time.Duration, time.Duration) {
		t.Helper()
		before := resetPeakRSS(t)
		load := loadavg()
		start, cpu := time.Now(), cpuTime(syscall.RUSAGE_SELF)
		if _, err := g.f.Sync(ctx); err != nil {
			t.Fatalf("%s: sync: %v", step, err)
		}
		sync := time.Since(start)
		syncPeak := peakRSS(t)
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			t.Fatal(err)
		}
		g.waitRuns(n)
		all, cpu := time.Since(start), cpuTime(syscall.RUSAGE_SELF)-cpu
		st := g.v.Status()
		run := st.Runs[0]
		t.Logf("%s: node: sync %v, validation %v (reading %v), sync to validated %v (CPU %v): %d VRPs (+%d -%d), %d CAs (%d failing), points checked %d, reused %d; RSS before %s, peak during the sync %s, peak from the sync's end to the run's %s, after %s; load average %s, after %s",
			step, sync.Round(time.Millisecond), run.Duration.Round(time.Millisecond), run.Read.Round(time.Millisecond), all.Round(time.Millisecond), cpu.Round(time.Millisecond),
			st.VRPs, run.Added, run.Removed, st.CAs, st.FailingCAs, st.Revalidated, st.Reused,
			mib(before), mib(syncPeak), mib(peakRSS(t)), mib(currentRSS(t)), load, loadavg())
		return run.Duration, all
	}
	ratio := func(step, node string, nodeD, rcD time.Duration, rc string) {
		t.Logf("%s: node %s / rpki-client %s = %.3f", step, node, rc, nodeD.Seconds()/rcD.Seconds())
	}

	const first = "first state"
	rcFull := rpkiClient(first)
	rcOnly := rpkiClient(first, "-n")
	d, all := node(first, 1)
	if d2 := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), want(), 10); d2 != "" {
		t.Fatalf("%s: /vrps.json differs from the generator's:\n%s", first, d2)
	}
	ratio(first, "validation", d, rcFull, "(fetch and validate)")
	ratio(first, "validation", d, rcOnly, "-n (validate only)")
	ratio(first, "sync to validated", all, rcFull, "(fetch and validate)")

	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		if c, err := os.UserCacheDir(); err == nil {
			kc = filepath.Join(c, "rrdp-proxy", "keys")
		}
	}
	repo, err := repotest.Open(g.dir, repotest.Options{KeyCache: kc})
	if err != nil {
		t.Fatal(err)
	}
	const advanced = "gen --advance 1"
	start := time.Now()
	if err := repo.Advance(time.Now().UTC().Truncate(time.Second), 1); err != nil {
		t.Fatal(err)
	}
	g.publish()
	in := repo.Info()
	t.Logf("%s: serial %d made in %v, delta %d bytes; load average %s", advanced, in.Serial, time.Since(start).Round(time.Millisecond), in.Deltas[len(in.Deltas)-1].Size, loadavg())
	d, all = node(advanced, 2)
	if d2 := rpki.DiffVRPs(vrpsOf(t, g.get("vrps.json")), want(), 10); d2 != "" {
		t.Fatalf("%s: /vrps.json differs from the generator's:\n%s", advanced, d2)
	}
	rc := rpkiClient(advanced)
	ratio(advanced, "revalidation", d, rc, "(fetching the delta)")
	ratio(advanced, "sync to validated", all, rc, "(fetching the delta)")

	const oneCA = "one CA changed"
	broken := g.breakROAs(func(_, _, points int) bool { return points == 1 })
	t.Logf("%s: %s", oneCA, strings.Join(broken, " "))
	d, all = node(oneCA, 3)
	st := g.v.Status()
	if st.Runs[0].Removed == 0 || st.FailingCAs != 1 {
		t.Errorf("%s: %d removed, %d failing CAs, want some and 1", oneCA, st.Runs[0].Removed, st.FailingCAs)
	}
	// rpki-client keeps the point's last valid copy from its cache, so
	// its VRPs stay those of the previous serial: only its time counts.
	load := loadavg()
	cpu := cpuTime(syscall.RUSAGE_CHILDREN)
	res, err := rp.RunRPKIClient(ctx, rcOpts)
	if err != nil {
		t.Fatal(err)
	}
	cpu = cpuTime(syscall.RUSAGE_CHILDREN) - cpu
	t.Logf("%s: rpki-client: %v (CPU %v), %d VRPs; load average %s, after %s", oneCA, res.Elapsed.Round(time.Millisecond), cpu.Round(time.Millisecond), len(res.VRPs), load, loadavg())
	ratio(oneCA, "revalidation", d, res.Elapsed, "(fetching the delta)")
	ratio(oneCA, "sync to validated", all, res.Elapsed, "(fetching the delta)")
}

// cpuTime returns the user and system CPU time of who (RUSAGE_SELF, or
// RUSAGE_CHILDREN: the descendants waited for, theirs included).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mib formats bytes as MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// statusField returns a "kB" field of /proc/self/status in bytes.
func statusField(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return kBField(b, name)
}

func kBField(b []byte, name string) int64 {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+":")); ok {
			f := strings.Fields(string(v))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

func peakRSS(t *testing.T) int64    { return statusField(t, "VmHWM") }
func currentRSS(t *testing.T) int64 { return statusField(t, "VmRSS") }

// resetPeakRSS returns the memory the Go runtime holds and no longer
// uses to the system, resets VmHWM to the current RSS and returns it.
func resetPeakRSS(t *testing.T) int64 {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	return currentRSS(t)
}

// sampleChildrenRSS samples, every 200 ms until the returned function is
// called, the sum of the RSS of this process's descendants, and returns
// the largest sum.
func sampleChildrenRSS() (stop func() int64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, descendantsRSS(os.Getpid()))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() int64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// descendantsRSS returns the sum of VmRSS of the descendants of pid.
func descendantsRSS(pid int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var sum int64
	for p := range parent {
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status"); err == nil {
					sum += kBField(b, "VmRSS")
				}
				break
			}
		}
	}
	return sum
}
