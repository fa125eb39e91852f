package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	Requests   int64         // completed requests
	Duration   time.Duration // of the run, as wrk measured it
	Bytes      float64       // bytes read (rounded by wrk to 3 significant figures)
	ReqPerSec  float64       // Requests/sec
	BytesPerS  float64       // Transfer/sec, in bytes
	LatAvg     time.Duration // Thread Stats: Latency Avg
	LatMax     time.Duration
	Percentile map[int]time.Duration // --latency: 50, 75, 90, 99
	Errors     wrkErrors
	Non2xx3xx  int64
}

// wrkErrors are wrk's socket errors.
type wrkErrors struct {
	Connect, Read, Write, Timeout int64
}

func (e wrkErrors) total() int64 { return e.Connect + e.Read + e.Write + e.Timeout }

// errWrkOutput marks output parseWrk does not understand.
var errWrkOutput = errors.New("unexpected wrk output")

// parseWrk parses the text wrk 4 prints with --latency. Requests/sec,
// Transfer/sec and the latency distribution are required; socket errors
// and non-2xx lines appear only when there were some.
func parseWrk(out []byte) (wrkResult, error) {
	r := wrkResult{Percentile: make(map[int]time.Duration)}
	var haveReq, haveTransfer, inDist bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		f := strings.Fields(text)
		fail := func(what string, err error) error {
			return fmt.Errorf("parse wrk output line %d %q: %s: %w", line, text, what, err)
		}
		if inDist {
			if len(f) == 2 && strings.HasSuffix(f[0], "%") {
				p, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
				if err != nil {
					return r, fail("percentile", err)
				}
				d, err := parseWrkTime(f[1])
				if err != nil {
					return r, fail("latency", err)
				}
				r.Percentile[int(p)] = d
				continue
			}
			inDist = false
		}
		var err error
		switch {
		case text == "Latency Distribution":
			inDist = true
		case len(f) == 5 && f[0] == "Latency":
			if r.LatAvg, err = parseWrkTime(f[1]); err != nil {
				return r, fail("average latency", err)
			}
			if r.LatMax, err = parseWrkTime(f[3]); err != nil {
				return r, fail("maximum latency", err)
			}
		case len(f) == 6 && f[1] == "requests" && f[2] == "in" && f[5] == "read":
			if r.Requests, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return r, fail("requests", err)
			}
			if r.Duration, err = parseWrkTime(strings.TrimSuffix(f[3], ",")); err != nil {
				return r, fail("duration", err)
			}
			if r.Bytes, err = parseWrkBytes(f[4]); err != nil {
				return r, fail("bytes read", err)
			}
		case strings.HasPrefix(text, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 12
			rest := strings.TrimPrefix(text, "Socket errors:")
			for _, part := range strings.Split(rest, ",") {
				kv := strings.Fields(part)
				if len(kv) != 2 {
					return r, fail("socket errors", errWrkOutput)
				}
				n, err := strconv.ParseInt(kv[1], 10, 64)
				if err != nil {
					return r, fail("socket errors", err)
				}
				switch kv[0] {
				case "connect":
					r.Errors.Connect = n
				case "read":
					r.Errors.Read = n
				case "write":
					r.Errors.Write = n
				case "timeout":
					r.Errors.Timeout = n
				}
			}
		case strings.HasPrefix(text, "Non-2xx or 3xx responses:"):
			if r.Non2xx3xx, err = strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(text, "Non-2xx or 3xx responses:")), 10, 64); err != nil {
				return r, fail("non-2xx responses", err)
			}
		case len(f) == 2 && f[0] == "Requests/sec:":
			if r.ReqPerSec, err = strconv.ParseFloat(f[1], 64); err != nil {
				return r, fail("requests/sec", err)
			}
			haveReq = true
		case len(f) == 2 && f[0] == "Transfer/sec:":
			if r.BytesPerS, err = parseWrkBytes(f[1]); err != nil {
				return r, fail("transfer/sec", err)
			}
			haveTransfer = true
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("parse wrk output: %w", err)
	}
	for _, p := range []int{50, 90, 99} {
		if _, ok := r.Percentile[p]; !ok {
			return r, fmt.Errorf("parse wrk output: no %d%% latency (was --latency given?): %w", p, errWrkOutput)
		}
	}
	if !haveReq || !haveTransfer {
		return r, fmt.Errorf("parse wrk output: no Requests/sec or Transfer/sec line: %w", errWrkOutput)
	}
	return r, nil
}

// parseWrkTime parses a wrk duration: a number followed by us, ms, s, m
// or h ("635.91us", "1.02s", "1.00m").
func parseWrkTime(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		scale  float64
	}{{"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}}
	for _, u := range units { // "us" and "ms" before "s"
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("time %q: %w", s, err)
			}
			return time.Duration(v * u.scale), nil
		}
	}
	return 0, fmt.Errorf("time %q: no unit: %w", s, errWrkOutput)
}

// parseWrkBytes parses a wrk byte count, binary units: "512.00B",
// "1.75GB", "83.42MB", "12.30KB", "1.01TB".
func parseWrkBytes(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, "B")
	if !ok {
		return 0, fmt.Errorf("bytes %q: no B: %w", s, errWrkOutput)
	}
	scale := 1.0
	if n := len(num); n > 0 {
		if i := strings.IndexByte("KMGTP", num[n-1]); i >= 0 {
			num = num[:n-1]
			for range i + 1 {
				scale *= 1024
			}
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bytes %q: %w", s, err)
	}
	return v * scale, nil
}

// wrkRun is one wrk invocation: the arguments after the binary.
type wrkRun struct {
	bin  string
	args []string
}

// newWrkRun builds wrk's arguments for url with the settings s.
func newWrkRun(bin string, s wrkSettings, url string, headers ...string) wrkRun {
	args := []string{
		"-t", strconv.Itoa(min(s.Threads, s.Connections)),
		"-c", strconv.Itoa(s.Connections),
		"-d", wrkSeconds(s.Duration),
		"--timeout", wrkSeconds(s.Timeout),
		"--latency",
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return wrkRun{bin: bin, args: append(args, url)}
}

// wrkSeconds formats d for wrk, which reads "10s" and "1m" but not "1.5s".
func wrkSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(d.Round(time.Second), time.Second)/time.Second), 10) + "s"
}

// wrkSettings are the settings shared by the runs compared with each other.
type wrkSettings struct {
	Threads, Connections int
	Duration, Timeout    time.Duration
}

// String returns the command line, quoted for a POSIX shell.
func (w wrkRun) String() string {
	parts := []string{"wrk"}
	for _, a := range w.args {
		if strings.ContainsAny(a, " ;:'\"*$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// run runs wrk and parses its output.
func (w wrkRun) run(ctx context.Context) (wrkResult, []byte, error) {
	cmd := exec.CommandContext(ctx, w.bin, w.args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return wrkResult{}, out, fmt.Errorf("run %s: %w: %s", w, err, bytes.TrimSpace(stderr.Bytes()))
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, out, fmt.Errorf("run %s: %w", w, err)
	}
	return r, out, nil
}
