package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// followChild is a running `rrdp-proxy serve` of bench follow: one
// repository in mirror or reverse mode, plain HTTP on 127.0.0.1, a state
// directory.
type followChild struct {
	cmd    *exec.Cmd
	pid    int
	addr   string // 127.0.0.1:PORT
	ops    string // where its operator pages are: addr, or its admin listener
	base   string // what its notifications name files under (childSpec.base)
	host   string // the Host header of requests ("": the URL's)
	notif  string // http URL of its notification.xml
	client *http.Client
	logf   *os.File
	exited chan struct{}
	err    error // Wait's, once exited is closed

	mu      sync.Mutex
	maxRSS  int64 // largest VmRSS sampled
	killed  bool  // by the RSS cap
	stopped chan struct{}
}

// childSpec is how a child is configured.
type childSpec struct {
	mode   string // modeMirror ("" too) or modeReverse
	addr   string // its listener, 127.0.0.1:PORT
	origin string // the benchmark's origin, https://localhost:PORT/
	caFile string // the CA of the origin's certificate
	state  string // its state directory
	disk   string // cache.disk ("": the binary's default)
	// admin, if set, is an admin listener with pprof (--cpuprofile): the
	// operator pages move there.
	admin string
}

// public is the reverse mode's public name of the repository's host,
// localhost:PORT with the child's own port: relying parties would reach
// the child under it, and the origin's notification names its files
// under it (https://public/), as a publication server behind an
// rrdp-proxy names them by the public host, not by the internal address
// the proxy fetches them from (fetch_from).
func (s childSpec) public() string {
	_, port, _ := strings.Cut(s.addr, ":")
	return "localhost:" + port
}

// base is the URL the child's notifications name their files under: its
// mirror_base, or in reverse mode the origin's public URL.
func (s childSpec) base() string {
	if s.mode == modeReverse {
		return "https://" + s.public() + "/"
	}
	return "https://" + s.addr + "/"
}

// originBase is the URL the origin's notification names its files under.
func (s childSpec) originBase() string {
	if s.mode == modeReverse {
		return s.base()
	}
	return s.origin
}

// write writes the child's configuration into file.
func (s childSpec) write(file string) error {
	disk := ""
	if s.disk != "" {
		disk = fmt.Sprintf("disk = %q\n", s.disk)
	}
	repo := fmt.Sprintf(`origin = %q
mode = "mirror"
`, s.origin+"rrdp/notification.xml")
	if s.mode == modeReverse {
		// fetch_from keeps the origin's TLS name (localhost) and connects
		// to the origin's address; the certificate is checked as in
		// mirror mode.
		host := strings.TrimSuffix(strings.TrimPrefix(s.origin, "https://"), "/")
		_, port, _ := strings.Cut(host, ":")
		repo = fmt.Sprintf(`origin = %q
fetch_from = %q
mode = "reverse"
hosts = [%q]
`, s.base()+"rrdp/notification.xml", "https://127.0.0.1:"+port, s.public())
	}
	admin := ""
	if s.admin != "" {
		admin = fmt.Sprintf("admin_listen = %q\npprof = true\n", s.admin)
	}
	conf := fmt.Sprintf(`[server]
listen = [%q]
mirror_base = "https://%s/"
node = "bench"
log_level = "warn"
%s
[cache]
memory = "256MiB"
state_dir = %q
%s
[[repository]]
name = "bench"
%sca_file = %q
poll_interval = "1s"
jitter = 0.01
max_backoff = "2s"
`, s.addr, s.addr, admin, s.state, disk, repo, s.caFile)
	return os.WriteFile(file, []byte(conf), 0o644)
}

// freeAddr returns a free 127.0.0.1:PORT.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startFollowChild starts bin serve --config file, file written from
// spec. A sampler reads its RSS every 100 ms and kills it above maxRSS.
func startFollowChild(bin, file string, spec childSpec, logFile string, maxRSS int64) (*followChild, error) {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	cmd := exec.Command(bin, "serve", "--config", file)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &followChild{cmd: cmd, pid: cmd.Process.Pid, addr: spec.addr, ops: cmp.Or(spec.admin, spec.addr), base: spec.base(),
		client: &http.Client{Timeout: 30 * time.Second}, logf: logf,
		exited: make(chan struct{}), stopped: make(chan struct{})}
	if spec.mode == modeReverse {
		// Routed by Host: the public name, on the child's own listener.
		c.host, c.notif = spec.public(), "http://"+spec.addr+"/rrdp/notification.xml"
	} else {
		host := strings.TrimSuffix(strings.TrimPrefix(spec.origin, "https://"), "/")
		c.notif = "http://" + spec.addr + "/" + host + "/rrdp/notification.xml"
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	go c.sample(maxRSS)
	return c, nil
}

// sample records the largest RSS until the child exits or stop.
func (c *followChild) sample(maxRSS int64) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.exited:
			return
		case <-c.stopped:
			return
		case <-t.C:
		}
		rss, _, err := c.memory()
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.maxRSS = max(c.maxRSS, rss)
		if maxRSS > 0 && rss > maxRSS && !c.killed {
			c.killed = true
			c.cmd.Process.Kill()
		}
		c.mu.Unlock()
	}
}

// wasKilled tells whether the sampler killed the child for its RSS.
func (c *followChild) wasKilled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// alive returns nil while the child runs.
func (c *followChild) alive() error {
	select {
	case <-c.exited:
		if c.wasKilled() {
			return errors.New("killed by the benchmark: RSS above --max-rss")
		}
		return fmt.Errorf("rrdp-proxy serve exited: %v (log %s)", c.err, c.logf.Name())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 40 s, then kills.
func (c *followChild) stop() error {
	defer c.logf.Close()
	defer c.client.CloseIdleConnections()
	select {
	case <-c.exited:
		return nil
	default:
	}
	close(c.stopped)
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(40 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return errors.New("rrdp-proxy serve did not stop within 40s of SIGTERM: killed")
	}
}

// cpuProfile writes the child's CPU profile of the next d into file.
func (c *followChild) cpuProfile(ctx context.Context, d time.Duration, file string) error {
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.ops, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s: status %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("cpu profile: %s: %w", u, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return nil
}

// cpuTime returns the CPU time (user and system) the child used so far,
// from /proc/PID/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func (c *followChild) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which ends with the last ')':
	// state is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", c.pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command name, want at least 13", c.pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", c.pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// memory returns VmRSS and VmHWM of the child.
func (c *followChild) memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", c.pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// resetPeak resets the child's VmHWM to its RSS (Linux 4.0 and later)
// and the sampler's maximum.
func (c *followChild) resetPeak() error {
	c.mu.Lock()
	c.maxRSS = 0
	c.mu.Unlock()
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", c.pid), []byte("5"), 0)
}

// peak is the larger of VmHWM and the sampler's maximum since resetPeak,
// and the RSS now.
func (c *followChild) peak() (peak, rss int64) {
	rss, hwm, _ := c.memory()
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(hwm, c.maxRSS, rss), rss
}

// request is a request of u to the child, under its Host.
func (c *followChild) request(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if c.host != "" {
		req.Host = c.host
	}
	return req, nil
}

// get fetches u from the child, at most 64 MiB, and returns the status
// and the body.
func (c *followChild) get(ctx context.Context, u string) (int, []byte, error) {
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b, err
}

// notification returns the child's notification.xml, decoded.
func (c *followChild) notification(ctx context.Context) (*rrdpxml.Notification, error) {
	code, b, err := c.get(ctx, c.notif)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", c.notif, code)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.notif, err)
	}
	return n, nil
}

// waitSerial polls the child's notification.xml every 20 ms until it
// names serial, and returns when it saw it first.
func (c *followChild) waitSerial(ctx context.Context, serial uint64, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := c.alive(); err != nil {
			return time.Time{}, err
		}
		n, err := c.notification(ctx)
		if err == nil && n.Serial >= serial {
			return time.Now(), nil
		}
		if err == nil {
			err = fmt.Errorf("serves serial %d", n.Serial)
		}
		last = err
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("serial %d not served after %v: %v", serial, timeout, last)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ready polls /readyz every 20 ms until it answers 200.
func (c *followChild) ready(ctx context.Context, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		if err := c.alive(); err != nil {
			return time.Time{}, err
		}
		code, _, err := c.get(ctx, "http://"+c.ops+"/readyz")
		if err == nil && code == http.StatusOK {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("/readyz not 200 after %v (status %d, %v)", timeout, code, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// servedBytes sums the bytes of the current state the child serves: its
// notification.xml and .bin and every file they name, each identity and
// gzip (HEAD requests; Content-Length, else a GET counted).
func (c *followChild) servedBytes(ctx context.Context) (int64, error) {
	binURL := strings.TrimSuffix(c.notif, ".xml") + ".bin"
	urls := []string{c.notif, binURL}
	n, err := c.notification(ctx)
	if err != nil {
		return 0, err
	}
	named := []string{n.Snapshot.URI}
	for _, d := range n.Deltas {
		named = append(named, d.URI)
	}
	code, b, err := c.get(ctx, binURL)
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d, %v", binURL, code, err)
	}
	nb, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", binURL, err)
	}
	named = append(named, nb.Snapshot.URI)
	for _, d := range nb.Deltas {
		named = append(named, d.URI)
	}
	for _, u := range named {
		rel, ok := strings.CutPrefix(u, c.base)
		if !ok {
			return 0, fmt.Errorf("the notification names %s, not under %s", u, c.base)
		}
		urls = append(urls, "http://"+c.addr+"/"+rel)
	}
	var sum int64
	for _, u := range urls {
		for _, enc := range []string{"identity", "gzip"} {
			size, err := c.size(ctx, u, enc)
			if err != nil {
				return 0, err
			}
			sum += size
		}
	}
	return sum, nil
}

// size returns the bytes the child sends for u with Accept-Encoding enc:
// 0 for gzip when it answers with the identity bytes.
func (c *followChild) size(ctx context.Context, u, enc string) (int64, error) {
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		req, err := c.request(ctx, method, u)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Accept-Encoding", enc)
		resp, err := c.client.Do(req)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s: status %d", u, resp.StatusCode)
		}
		if enc == "gzip" && resp.Header.Get("Content-Encoding") != "gzip" {
			return 0, nil
		}
		if method == http.MethodGet {
			return n, nil
		}
		if resp.ContentLength >= 0 {
			return resp.ContentLength, nil
		}
	}
	return 0, fmt.Errorf("%s: no size", u)
}

// dirSize returns the bytes of the regular files below dir.
func dirSize(dir string) int64 {
	var sum int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				sum += fi.Size()
			}
		}
		return nil
	})
	return sum
}

// statusJSON is what bench follow reads of /status.json.
type statusJSON struct {
	Cache struct {
		PinnedBytes int64 `json:"pinned_bytes"`
		CachedBytes int64 `json:"cached_bytes"`
		ColdBytes   int64 `json:"cold_bytes"`
	} `json:"cache"`
	Repos []struct {
		Serial        uint64 `json:"serial"`
		LastError     string `json:"last_error"`
		LastErrorTime string `json:"last_error_time"`
	} `json:"repos"`
}

// status returns the child's /status.json.
// waitWarm waits until the child holds its whole state in memory
// (/status.json cold_bytes 0: a cold serial read back), and returns when.
func (c *followChild) waitWarm(ctx context.Context, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.status(ctx)
		if err == nil && s.Cache.ColdBytes == 0 {
			return time.Now(), nil
		}
		if err == nil {
			err = fmt.Errorf("%d bytes not read back", s.Cache.ColdBytes)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("state not in memory after %v: %v", timeout, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *followChild) status(ctx context.Context) (*statusJSON, error) {
	code, b, err := c.get(ctx, "http://"+c.ops+"/status.json")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/status.json: status %d", code)
	}
	var s statusJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("/status.json: %w", err)
	}
	return &s, nil
}

// metrics returns the samples of /metrics whose series (name and labels)
// are in want.
func (c *followChild) metrics(ctx context.Context, want ...string) (map[string]float64, error) {
	code, b, err := c.get(ctx, "http://"+c.ops+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: status %d", code)
	}
	out := make(map[string]float64, len(want))
	for line := range strings.Lines(string(b)) {
		series, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !slices.Contains(want, series) {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[series] = f
		}
	}
	return out, nil
}
