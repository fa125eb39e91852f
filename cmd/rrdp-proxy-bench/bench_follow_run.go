package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// followEnv runs the scenarios of bench follow.
type followEnv struct {
	o        benchFollowOptions
	tmp      string
	pki      *rp.PKI
	progress io.Writer
	mu       sync.Mutex // guards n (soaks may run at once)
	n        int        // runs so far, naming their directories
	faults   int        // faults so far, naming their paths
}

// followRun is one binary following one repository through the serials
// (and the faults).
type followRun struct {
	bin     string
	objects int
	initial followStep
	steps   []followStep
	faults  []faultResult
	err     string // why the run stopped early
}

// followStep is one serial: its time to the child and the memory.
type followStep struct {
	changes   int
	load      string        // 1-minute load average before it
	prep      time.Duration // the benchmark writing the serial's files
	total     time.Duration // new notification at the origin to served by the child
	afterPoll time.Duration // the child's first fetch of it to served
	// inMemory is from served to the child holding the whole new state
	// in memory again: a cold serial's segments are read back after its
	// head is served (cache.Cache.PutCold); zero for the others.
	inMemory  time.Duration
	cpu       time.Duration // the child's CPU time over total
	peak, rss int64
	served    int64  // bytes of the current state served
	pinned    int64  // /status.json pinned_bytes
	servedErr string // why served is unknown
	// checked tells that the child served the origin's bytes (reverse
	// mode: checkOrigin passed; a failure is err).
	checked bool
	err     string
}

// faultResult is one fault offered as the next serial's snapshot.
type faultResult struct {
	what                     string
	load                     string
	steady, peak, rss, after int64
	took                     time.Duration // offer to the child's log naming the file
	oldServed                bool
	lastError, logLine, err  string
}

// setup is what one run needs: an origin serving a repository, and the
// configuration of a child following it.
type setup struct {
	dir, state, config, addr, log string
	spec                          childSpec
	origin                        *followOrigin
	repo                          *followRepo
}

func (e *followEnv) setup(b followBin, src string) (*setup, error) {
	e.mu.Lock()
	e.n++
	dir := filepath.Join(e.tmp, fmt.Sprintf("%02d-%s-%s", e.n, filepath.Base(src), b.name))
	e.mu.Unlock()
	s := &setup{dir: dir, state: filepath.Join(dir, "state"), config: filepath.Join(dir, "rrdp-proxy.toml"), log: filepath.Join(dir, "serve.log")}
	if err := os.MkdirAll(filepath.Join(dir, "origin"), 0o755); err != nil {
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	var err error
	if s.origin, err = startFollowOrigin(filepath.Join(dir, "origin"), e.pki); err != nil {
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	if s.addr, err = freeAddr(); err != nil {
		s.origin.Close()
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	s.spec = childSpec{mode: e.o.mode, addr: s.addr, origin: s.origin.url, caFile: e.pki.CAFile, state: s.state, disk: e.o.disk}
	if e.o.cpuProfile != "" {
		if s.spec.admin, err = freeAddr(); err != nil {
			s.origin.Close()
			return nil, fmt.Errorf("bench follow: %w", err)
		}
	}
	fmt.Fprintf(e.progress, "bench follow: %s: loading %s\n", b.name, src)
	if s.repo, err = loadFollowRepo(src, filepath.Join(dir, "origin"), s.spec.originBase(), e.o.seed); err != nil {
		s.origin.Close()
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	s.origin.publish(s.repo.notification(), s.repo.serial)
	if err := s.spec.write(s.config); err != nil {
		s.origin.Close()
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	return s, nil
}

func (e *followEnv) start(b followBin, s *setup) (*followChild, error) {
	c, err := startFollowChild(b.path, s.config, s.spec, s.log, e.o.maxRSS)
	if err != nil {
		return nil, fmt.Errorf("bench follow: %w", err)
	}
	return c, nil
}

// serials runs the serials scenario (and the faults) of binary b on the
// repository src.
func (e *followEnv) serials(ctx context.Context, b followBin, src string, faults bool) (*followRun, error) {
	s, err := e.setup(b, src)
	if err != nil {
		return nil, err
	}
	defer s.origin.Close()
	run := &followRun{bin: b.name, objects: len(s.repo.objs)}
	run.initial.load = loadAverage()
	start := time.Now()
	c, err := e.start(b, s)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	fmt.Fprintf(e.progress, "bench follow: %s: the first sync of serial %d\n", b.name, s.repo.serial)
	if _, err := c.waitSerial(ctx, s.repo.serial, e.o.syncTimeout); err != nil {
		run.err = fmt.Sprintf("first sync: %v", err)
		return run, nil
	}
	run.initial.total = time.Since(start)
	run.initial.cpu, _ = c.cpuTime()
	run.initial.peak, run.initial.rss = c.peak()
	if run.initial.served, err = c.servedBytes(ctx); err != nil {
		run.initial.servedErr = err.Error()
	}
	if e.checkOrigin(ctx, c, s, &run.initial); run.initial.err != "" {
		run.err = "first sync: " + run.initial.err
		return run, nil
	}
	for _, n := range e.o.changes {
		st := e.step(ctx, c, s, n)
		run.steps = append(run.steps, st)
		fmt.Fprintf(e.progress, "bench follow: %s: %d changes: %v to served, peak RSS %s %s\n", b.name, n, st.total.Round(time.Millisecond), mib(st.peak), st.err)
		if st.err != "" {
			run.err = st.err
			return run, nil
		}
	}
	if faults {
		bomb, err := gzipBomb(s.repo.session, s.repo.serial+1, e.o.bombSize)
		if err != nil {
			return nil, fmt.Errorf("bench follow: gzip bomb: %w", err)
		}
		for _, f := range []struct {
			what string
			h    http.HandlerFunc
		}{
			{fmt.Sprintf("gzip bomb (%s on the wire, %s decoded)", humanBytes(int64(len(bomb))), mib(e.o.bombSize)), bombHandler(bomb)},
			{fmt.Sprintf("%s body, bad hash", mib(e.o.hugeSize)), hugeHandler(s.repo.session, s.repo.serial+1, e.o.hugeSize)},
		} {
			r := e.fault(ctx, c, s, f.what, f.h)
			fmt.Fprintf(e.progress, "bench follow: %s: %s: peak %s above %s, old state served %v %s\n", b.name, f.what, mib(r.peak-r.steady), mib(r.steady), r.oldServed, r.err)
			run.faults = append(run.faults, r)
			if c.alive() != nil {
				run.err = fmt.Sprintf("%s: %v", f.what, c.alive())
				return run, nil
			}
		}
	}
	return run, nil
}

// step publishes a serial of n changed objects and measures it.
func (e *followEnv) step(ctx context.Context, c *followChild, s *setup, n int) followStep {
	st := followStep{changes: n}
	var err error
	if st.prep, err = timed(func() error { return s.repo.advance(n) }); err != nil {
		st.err = err.Error()
		return st
	}
	time.Sleep(e.o.pause) // the child settles after the previous step
	if err := c.resetPeak(); err != nil {
		st.err = err.Error()
		return st
	}
	st.load = loadAverage()
	profiled := make(chan error, 1)
	if e.o.cpuProfile != "" {
		file := filepath.Join(e.o.cpuProfile, fmt.Sprintf("%s-%d.pprof", filepath.Base(s.dir), n))
		// Started just before the notification: the child polls once a
		// second, so its fetch of it comes after the profile started but
		// for a race of milliseconds.
		go func() { profiled <- c.cpuProfile(ctx, e.o.profileFor, file) }()
	} else {
		profiled <- nil
	}
	cpu0, cerr := c.cpuTime()
	published := s.origin.publish(s.repo.notification(), s.repo.serial)
	served, err := c.waitSerial(ctx, s.repo.serial, e.o.syncTimeout)
	if cpu1, cerr1 := c.cpuTime(); err == nil && cerr == nil && cerr1 == nil {
		st.cpu = cpu1 - cpu0
	}
	// The profile ends before anything else asks the child for work.
	if perr := <-profiled; perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		st.err = err.Error()
		st.peak, st.rss = c.peak()
		return st
	}
	st.total = served.Sub(published)
	if p := s.origin.firstPoll(s.repo.serial); !p.IsZero() {
		st.afterPoll = served.Sub(p)
	}
	// The peak includes reading a cold serial's state back.
	if warm, err := c.waitWarm(ctx, e.o.syncTimeout); err == nil {
		st.inMemory = warm.Sub(served)
	} else {
		st.err = err.Error()
	}
	time.Sleep(e.o.pause)
	st.peak, st.rss = c.peak()
	st.served, err = c.servedBytes(ctx)
	if err != nil {
		st.servedErr = err.Error()
	}
	if js, err := c.status(ctx); err == nil {
		st.pinned = js.Cache.PinnedBytes
	}
	e.checkOrigin(ctx, c, s, &st)
	return st
}

// checkOrigin checks, in reverse mode, that the child serves the origin's
// bytes of the serial it was measured at (after the measurement: the
// check reads the whole snapshot twice), and records it in st.
func (e *followEnv) checkOrigin(ctx context.Context, c *followChild, s *setup, st *followStep) {
	if e.o.mode != modeReverse {
		return
	}
	if err := c.checkOrigin(ctx, s.origin.current(), s.repo.dir, s.repo.base); err != nil {
		st.err = fmt.Sprintf("the child does not serve the origin's bytes: %v", err)
		return
	}
	st.checked = true
}

// fault offers h as the snapshot of the next serial, no delta listed,
// and measures the child until the origin's response finished and 2 s
// more; then the origin's notification is the last good one again.
func (e *followEnv) fault(ctx context.Context, c *followChild, s *setup, what string, h http.HandlerFunc) faultResult {
	r := faultResult{what: what}
	time.Sleep(3 * e.o.pause)
	_, r.steady = c.peak()
	if err := c.resetPeak(); err != nil {
		r.err = err.Error()
		return r
	}
	r.load = loadAverage()
	serial := s.repo.serial + 1
	e.faults++
	p := fmt.Sprintf("/rrdp/%s/%d/fault%d/snapshot.xml", s.repo.session, serial, e.faults)
	s.origin.setFault(p, h)
	var b bytes.Buffer
	n := &rrdpxml.Notification{SessionID: s.repo.session, Serial: serial,
		Snapshot: rrdpxml.SnapshotRef{URI: s.repo.base + p[1:], Hash: sha256.Sum256([]byte(what))}}
	if err := rrdpxml.EncodeNotification(&b, n); err != nil {
		r.err = err.Error()
		return r
	}
	logAt := fileSize(s.log)
	start := s.origin.publish(b.Bytes(), serial)
	deadline := start.Add(5 * time.Minute)
	for s.origin.faultsDone(p) == 0 && c.alive() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// The child may decode what it fetched after the fetch: wait for its
	// log to name the file (an error), at most 3 minutes more.
	for deadline := time.Now().Add(3 * time.Minute); c.alive() == nil && time.Now().Before(deadline); {
		if strings.Contains(logSince(s.log, logAt), p) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.took = time.Since(start)
	time.Sleep(2 * e.o.pause)
	r.peak, r.rss = c.peak()
	r.logLine = lineNaming(s.log, logAt, p)
	if js, err := c.status(ctx); err == nil && len(js.Repos) == 1 {
		r.lastError = js.Repos[0].LastError
	}
	s.origin.publish(s.repo.notification(), s.repo.serial)
	s.origin.clearFaults()
	if err := c.alive(); err != nil {
		r.err = err.Error()
		return r
	}
	if s.origin.faultsDone(p) == 0 {
		r.err = "the child did not fetch the snapshot within 5 minutes"
	}
	if got, err := c.notification(ctx); err == nil && got.Serial == s.repo.serial && got.SessionID != "" {
		code, _, err := c.get(ctx, "http://"+c.addr+"/"+got.Snapshot.URI[len(c.base):])
		r.oldServed = err == nil && code == http.StatusOK
	}
	time.Sleep(8 * e.o.pause)
	r.after, _, _ = c.memory()
	return r
}

// fileSize is the size of the file p, 0 if there is none.
func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince is what the file p got after offset, at most 1 MiB.
func logSince(p string, offset int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, 1<<20))
	return string(b)
}

// lineNaming is the first line the file p got after offset that holds
// name (else the last line), at most 400 bytes of it.
func lineNaming(p string, offset int64, name string) string {
	text := strings.TrimSpace(logSince(p, offset))
	line := text[strings.LastIndexByte(text, '\n')+1:]
	for l := range strings.Lines(text) {
		if strings.Contains(l, name) {
			line = strings.TrimSpace(l)
			break
		}
	}
	if len(line) > 400 {
		line = line[:400] + "..."
	}
	return line
}

// execOutput runs name args and returns its output.
func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
