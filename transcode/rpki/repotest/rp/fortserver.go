package rp

import (
	"github.com/irpki/rrdp-proxy/transcode/rpki"

	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fortSpeed is how much faster than real time the clock of a FORT server
// runs. FORT's shortest validation interval is 60 seconds; at 60 times the
// speed, a cycle starts about every real second.
const fortSpeed = 60

// FORT's messages at level info around each validation cycle.
const (
	fortCycleStart = "INF: Starting validation."
	fortCycleEnd   = "INF: - Real execution time: "
)

// FORT is a FORT validator running in server mode, which repeats its
// validation cycle about once a second and, unlike standalone runs, keeps
// its RRDP session and serial between cycles, so that later cycles fetch
// deltas. Close stops it.
type FORT struct {
	cmd  *exec.Cmd
	argv []string
	work string
	vrps string

	readerDone chan struct{} // closed when the log reader has finished
	exited     chan struct{} // closed when the process has exited
	waitErr    error         // valid after exited

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new line
	lines   []string
	cycles  []fortCycle
	calls   int // Next calls so far
	end     int // index after the last line given to a Result
}

// fortCycle is one validation cycle seen in the log.
type fortCycle struct {
	start, end int // indexes in lines; end is -1 while running
	startAt    time.Time
	endAt      time.Time
	vrps       []rpki.VRP
	readErr    error
}

// StartFORT starts FORT in server mode (its RTR server on a free port of
// 127.0.0.1, which nobody connects to) under faketime, with a clock that
// starts at opts.Time (or now) and runs 60 times faster than real time.
// Mind the speed when objects expire soon after opts.Time: an hour of the
// relying party's time passes in a real minute.
func StartFORT(opts Options) (*FORT, error) {
	const op = "start fort"
	if err := opts.check(op); err != nil {
		return nil, err
	}
	work, err := workDir("rp-fort-server-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	f := &FORT{
		work:       work,
		readerDone: make(chan struct{}),
		exited:     make(chan struct{}),
		changed:    make(chan struct{}),
	}
	fail := func(err error) (*FORT, error) {
		os.RemoveAll(work)
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p, err := prepareFORT(context.Background(), work, opts)
	if err != nil {
		return fail(err)
	}
	f.vrps = p.vrps
	bin := opts.Binary
	if bin == "" {
		bin = "fort"
	}
	f.argv = append(fortArgs(bin, p),
		"--mode=server",
		"--server.address=127.0.0.1",
		"--server.port=0",
		"--server.interval.validation=60",
		// The timeouts run on the fast clock too: 600 s are 10 real
		// seconds. A speed limit would be measured on the fast clock.
		"--http.connect-timeout=600",
		"--http.low-speed-limit=0",
	)
	f.argv = append(f.argv, opts.Args...)
	if f.argv, err = withFakeTime(opts.Time, fortSpeed, f.argv); err != nil {
		return fail(err)
	}

	// Both streams go into one pipe, so that the lines keep FORT's order.
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	f.cmd = exec.Command(f.argv[0], f.argv[1:]...)
	f.cmd.Env = runEnv()
	f.cmd.Stdout = w
	f.cmd.Stderr = w
	f.cmd.SysProcAttr = childAttr()
	err = f.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fail(err)
	}
	go f.read(r)
	go func() {
		f.waitErr = f.cmd.Wait()
		close(f.exited)
	}()
	return f, nil
}

// read consumes FORT's log and tracks the validation cycles.
func (f *FORT) read(r *os.File) {
	defer close(f.readerDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		f.mu.Lock()
		i := len(f.lines)
		f.lines = append(f.lines, line)
		switch {
		case strings.Contains(line, fortCycleStart):
			f.cycles = append(f.cycles, fortCycle{start: i, end: -1, startAt: now})
		case strings.Contains(line, fortCycleEnd) && len(f.cycles) > 0 && f.cycles[len(f.cycles)-1].end < 0:
			c := &f.cycles[len(f.cycles)-1]
			c.end, c.endAt = i, now
			// FORT wrote the file before this line; read it before the
			// next cycle rewrites it.
			c.vrps, c.readErr = ReadVRPCSV(f.vrps)
		}
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

// Next waits for the first validation cycle that FORT starts after Next is
// called (for the first call: the first cycle) to finish, and returns its
// VRPs and the log lines since the previous Result. Change the origin
// before calling Next to see FORT fetch the change. Result.Stdout holds
// both of FORT's streams; Result.Stderr is empty.
func (f *FORT) Next(ctx context.Context) (*Result, error) {
	f.mu.Lock()
	target := len(f.cycles)
	if f.calls == 0 {
		target = 0
	}
	f.calls++
	f.mu.Unlock()
	for {
		f.mu.Lock()
		if target < len(f.cycles) && f.cycles[target].end >= 0 {
			res := f.result(target)
			f.mu.Unlock()
			return res, nil
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-f.readerDone:
			<-f.exited
			f.mu.Lock()
			tail := strings.Join(f.lines[max(0, len(f.lines)-20):], "\n")
			f.mu.Unlock()
			return nil, fmt.Errorf("wait for fort cycle %d: fort exited (%v); last lines:\n%s", target+1, f.waitErr, tail)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for fort cycle %d: %w", target+1, ctx.Err())
		}
	}
}

// result builds the Result of cycle i; f.mu is held.
func (f *FORT) result(i int) *Result {
	c := f.cycles[i]
	from := min(f.end, c.start)
	lines := f.lines[from : c.end+1]
	f.end = c.end + 1
	res := &Result{
		RP:      "fort",
		Command: f.argv,
		Stdout:  strings.Join(lines, "\n") + "\n",
		Elapsed: c.endAt.Sub(c.startAt),
		VRPs:    c.vrps,
	}
	res.Problems = fortProblems(res.Stdout)
	if c.readErr != nil {
		res.Problems = append(res.Problems, "harness: "+c.readErr.Error())
	}
	return res
}

// Log returns FORT's whole log so far.
func (f *FORT) Log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

// Close stops FORT, waits for it and removes its work directory (not the
// cache).
func (f *FORT) Close() error {
	defer os.RemoveAll(f.work)
	var err error
	select {
	case <-f.exited:
	default:
		f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.exited:
		case <-time.After(5 * time.Second):
			killGroup(f.cmd.Process.Pid)
			<-f.exited
			err = errors.New("stop fort: killed after 5s")
		}
	}
	<-f.readerDone
	return err
}
