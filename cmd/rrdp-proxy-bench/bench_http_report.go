package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// httpRun is one wrk run against one server.
type httpRun struct {
	cmd  string // the wrk command line
	load string // load averages before the run
	res  wrkResult
}

// httpRow is one file measured on nginx and the proxy, a run per round
// (nginx empty: the proxy alone, for information).
type httpRow struct {
	name         string
	nginx, proxy []*httpRun
}

// summary gives the medians of the rounds' rates and latency
// percentiles, the largest maximum latency, and the sums of requests and
// errors. It is nil without runs.
func summary(runs []*httpRun) *wrkResult {
	if len(runs) == 0 {
		return nil
	}
	med := func(f func(wrkResult) float64) float64 {
		vs := make([]float64, len(runs))
		for i, r := range runs {
			vs[i] = f(r.res)
		}
		slices.Sort(vs)
		if n := len(vs); n%2 == 0 {
			return (vs[n/2-1] + vs[n/2]) / 2
		}
		return vs[len(vs)/2]
	}
	s := &wrkResult{Percentile: make(map[int]time.Duration)}
	s.ReqPerSec = med(func(r wrkResult) float64 { return r.ReqPerSec })
	s.BytesPerS = med(func(r wrkResult) float64 { return r.BytesPerS })
	for _, p := range []int{50, 75, 90, 99} {
		s.Percentile[p] = time.Duration(med(func(r wrkResult) float64 { return float64(r.Percentile[p]) }))
	}
	for _, r := range runs {
		s.LatMax = max(s.LatMax, r.res.LatMax)
		s.Requests += r.res.Requests
		s.Errors.Connect += r.res.Errors.Connect
		s.Errors.Read += r.res.Errors.Read
		s.Errors.Write += r.res.Errors.Write
		s.Errors.Timeout += r.res.Errors.Timeout
	}
	return s
}

// httpReport is the result of bench http.
type httpReport struct {
	machine   machine
	versions  []string
	opts      benchHTTPOptions
	source    string
	workers   int    // nginx worker_processes = GOMAXPROCS
	notifSize [2]int // bytes of the proxy's and nginx's notification.xml
	snapSize  int64
	rows      []httpRow
	loadAfter string
	runs      int // wrk runs so far
}

// machine describes the host.
type machine struct {
	cpus     int
	cpu      string
	load     string // 1, 5 and 15 minute load averages at the start
	gomaxpro int
	time     time.Time
}

func readMachine() machine {
	return machine{cpus: runtime.NumCPU(), cpu: cpuModel(), load: loadAverages(), gomaxpro: runtime.GOMAXPROCS(0), time: time.Now().UTC()}
}

// loadAverages are the three load averages of /proc/loadavg, or "unknown".
func loadAverages() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// mibps is bytes per second in MiB/s (wrk's "MB").
func mibps(b float64) float64 { return b / (1 << 20) }

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// ratioF is a/b as "1.23×", or "n/a".
func ratioF(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// markdown renders the report.
func (r *httpReport) markdown() string {
	var b bytes.Buffer
	t := mdTable{&b}
	m := r.machine
	o := r.opts
	b.WriteString("# HTTP load: rrdp-proxy against nginx\n\n")
	fmt.Fprintf(&b, "Made by `rrdp-proxy-bench http` (see `rrdp-proxy-bench http --help`) on %s UTC.\n\n", m.time.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "- Machine: %d cores (%s), shared by wrk, nginx and the proxy; load average (1, 5, 15 min) %s at the start, %s at the end.\n",
		m.cpus, m.cpu, m.load, r.loadAfter)
	fmt.Fprintf(&b, "- Software: %s.\n", strings.Join(r.versions, "; "))
	fmt.Fprintf(&b, "- Repository: %s; snapshot.xml %s, notification.xml %d bytes (nginx) and %d bytes (proxy).\n",
		r.source, humanBytes(r.snapSize), r.notifSize[1], r.notifSize[0])
	fmt.Fprintf(&b, "- nginx: worker_processes %d (= the proxy's GOMAXPROCS %d), plain HTTP, sendfile, open_file_cache, no access log,\n", r.workers, m.gomaxpro)
	b.WriteString("  gzip_static from .gz files the benchmark writes: the notification compressed as the proxy compresses its own\n")
	b.WriteString("  (compress/gzip, best compression), the snapshot's exactly the bytes the proxy sends for it.\n")
	b.WriteString("- rrdp-proxy: in the benchmark's process, plain HTTP on 127.0.0.1, reverse-proxy mode, memory cache; its follower took\n")
	b.WriteString("  the state from that nginx before the runs. Both send the same snapshot bytes (checked).\n")
	fmt.Fprintf(&b, "- wrk: %d threads, %s per run, %d connections for notifications and %d for snapshots; %d round(s): in each, one\n",
		o.threads, wrkSeconds(o.duration), o.conns, o.snapConns, o.rounds)
	b.WriteString("  run per server, one after the other, nginx first in odd rounds and the proxy first in even ones. Figures are\n")
	b.WriteString("  medians over the rounds (max latency: the largest). Every response was 2xx (checked). MiB/s is wrk's Transfer/sec\n")
	b.WriteString("  (its MB = 2²⁰ bytes); for snapshots it counts the bytes of downloads still under way when the run ends.\n\n")

	b.WriteString("## Throughput\n\n")
	t.head("file", "nginx req/s", "proxy req/s", "proxy/nginx", "nginx MiB/s", "proxy MiB/s", "proxy/nginx")
	for _, row := range r.rows {
		p, n := summary(row.proxy), summary(row.nginx)
		if n == nil {
			t.row(row.name+" (proxy only)", "", fmt.Sprintf("%.0f", p.ReqPerSec), "", "", fmt.Sprintf("%.1f", mibps(p.BytesPerS)), "")
			continue
		}
		t.row(row.name, fmt.Sprintf("%.0f", n.ReqPerSec), fmt.Sprintf("%.0f", p.ReqPerSec), ratioF(p.ReqPerSec, n.ReqPerSec),
			fmt.Sprintf("%.1f", mibps(n.BytesPerS)), fmt.Sprintf("%.1f", mibps(p.BytesPerS)), ratioF(p.BytesPerS, n.BytesPerS))
	}

	b.WriteString("\n## Latency (ms)\n\n")
	t.head("file", "server", "p50", "p90", "p99", "max", "p99 proxy/nginx", "socket errors")
	for _, row := range r.rows {
		n := summary(row.nginx)
		for _, s := range []struct {
			name string
			res  *wrkResult
		}{{"nginx", n}, {"proxy", summary(row.proxy)}} {
			if s.res == nil {
				continue
			}
			l := s.res
			rat := ""
			if s.name == "proxy" && n != nil {
				rat = ratioF(float64(l.Percentile[99]), float64(n.Percentile[99]))
			}
			t.row(row.name, s.name, ms(l.Percentile[50]), ms(l.Percentile[90]), ms(l.Percentile[99]), ms(l.LatMax), rat,
				fmt.Sprint(l.Errors.total()))
		}
	}

	b.WriteString("\n## Runs\n\n")
	t.head("file", "server", "round", "load before", "req/s", "MiB/s", "command")
	for _, row := range r.rows {
		for _, s := range []struct {
			name string
			runs []*httpRun
		}{{"nginx", row.nginx}, {"proxy", row.proxy}} {
			for i, run := range s.runs {
				t.row(row.name, s.name, fmt.Sprint(i+1), run.load, fmt.Sprintf("%.0f", run.res.ReqPerSec),
					fmt.Sprintf("%.1f", mibps(run.res.BytesPerS)), "`"+run.cmd+"`")
			}
		}
	}
	b.WriteString("\nThe ports change from run to run. On a machine with few cores the client takes a large share of the CPU,\n")
	b.WriteString("so the figures are a lower bound for both servers; the ratios are what to compare, within one run.\n")
	return b.String()
}
