package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

const benchHTTPAbout = `HTTP load benchmark: rrdp-proxy side by side with nginx serving the same
repository's files from disk, on this machine, in one run.

The repository is --repo DIR (made by rrdp-proxy gen) or, without it, one
generated from --profile into a temporary directory. Debian's nginx serves
its files (plain HTTP, worker_processes = the proxy's GOMAXPROCS, sendfile,
open_file_cache, no access log, gzip_static with .gz files written beside
the notification and the snapshot); rrdp-proxy runs in this process: a
follower takes the state from nginx over https into a memory cache, and the
HTTP server serves it on 127.0.0.1. Then wrk runs against each, one after
the other, with the same settings: requests per second for notification.xml
(--connections), MB/s for the snapshot (--snapshot-connections), each
identity and gzip, with latency percentiles; and, for information, the
proxy's notification.bin and snapshot.bin. The load average is recorded
before every run: wrk, nginx and the proxy share the machine's cores.

The Markdown report is printed; with --out FILE it is written there too.`

// benchHTTPOptions are the flags of bench http.
type benchHTTPOptions struct {
	repo, profile, out, keyCache, nginx, wrk, raw string
	duration, maxWait                             time.Duration
	maxLoad                                       float64
	conns, snapConns, threads, rounds             int
	gzip                                          bool
}

func httpCommand(stdout, stderr io.Writer) *cli.Command {
	var o benchHTTPOptions
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	fs.StringVar(&o.repo, "repo", "", "repository `directory` made by rrdp-proxy gen (default: generate --profile)")
	fs.StringVar(&o.profile, "profile", "paper-1ca", "`profile` generated without --repo: "+strings.Join(repotest.ProfileNames(), ", "))
	fs.StringVar(&o.out, "out", "", "also write the Markdown report into this `file`")
	fs.StringVar(&o.keyCache, "key-cache", defaultKeyCache(), "`directory` caching derived keys for --profile")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "`length` of each wrk run (whole seconds)")
	fs.IntVar(&o.conns, "connections", 64, "wrk connections for the notification runs")
	fs.IntVar(&o.snapConns, "snapshot-connections", 32, "wrk connections (concurrent clients) for the snapshot runs")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.rounds, "rounds", 1, "runs per server and file, alternating which server goes first; the report gives medians")
	fs.BoolVar(&o.gzip, "gzip", true, "also compare gzip (Accept-Encoding: gzip)")
	fs.StringVar(&o.nginx, "nginx", "nginx", "nginx `binary`")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk `binary`")
	fs.Float64Var(&o.maxLoad, "max-load", 0, "before each run, wait until the 1-minute load average is at most `L` (0: do not wait)")
	fs.DurationVar(&o.maxWait, "max-wait", 2*time.Minute, "longest wait for --max-load before a run, which then starts anyway")
	fs.StringVar(&o.raw, "raw", "", "`directory` receiving wrk's output of every run")
	return &cli.Command{
		Name: "http", Args: "[flags]", Summary: "requests/s and MB/s of rrdp-proxy against nginx, measured with wrk",
		About: benchHTTPAbout, Flags: fs,
		Run: func([]string) error { return benchHTTPRun(o, stdout, stderr) },
	}
}

// benchHTTPRun runs bench http with the options o.
func benchHTTPRun(o benchHTTPOptions, stdout, stderr io.Writer) error {
	if o.duration < time.Second || o.conns < 1 || o.snapConns < 1 || o.threads < 1 || o.rounds < 1 {
		return cli.Usagef("--duration must be at least 1s, --connections, --snapshot-connections, --threads and --rounds positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := benchHTTP(ctx, o, stderr)
	if err != nil {
		return err
	}
	md := rep.markdown()
	io.WriteString(stdout, md)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// benchHTTP prepares the repository, starts both servers and runs wrk.
func benchHTTP(ctx context.Context, o benchHTTPOptions, progress io.Writer) (*httpReport, error) {
	for _, bin := range []string{o.nginx, o.wrk} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("bench http: %w", err)
		}
	}
	rep := &httpReport{machine: readMachine(), opts: o, source: o.repo}
	rep.versions = toolVersions(ctx, o.nginx, o.wrk)
	if o.repo == "" {
		dir, err := os.MkdirTemp("", "rrdp-proxy-bench-repo-")
		if err != nil {
			return nil, fmt.Errorf("bench http: %w", err)
		}
		defer os.RemoveAll(dir)
		prof, err := repotest.LookupProfile(o.profile)
		if err != nil {
			return nil, fmt.Errorf("bench http: %w", err)
		}
		fmt.Fprintf(progress, "bench http: generating profile %s\n", o.profile)
		_, err = repotest.Create(dir, repotest.Config{Profile: prof, Seed: 1, BaseURL: "https://localhost:3000/"},
			time.Now().UTC().Truncate(time.Second), repotest.Options{KeyCache: o.keyCache})
		if err != nil {
			return nil, fmt.Errorf("bench http: %w", err)
		}
		o.repo = dir
		rep.source = "profile " + o.profile + ", seed 1, generated for this run"
	}
	workers := runtime.GOMAXPROCS(0)
	rep.workers = workers
	env, err := startBenchEnv(ctx, benchEnvConfig{Repo: o.repo, Workers: workers, Gzip: o.gzip, Nginx: o.nginx})
	if err != nil {
		return nil, err
	}
	defer env.close()
	rep.notifSize = [2]int{len(env.head.NotificationXML), 0}
	if b, err := os.ReadFile(filepath.Join(env.overlay, env.nginxNotif[1:])); err == nil {
		rep.notifSize[1] = len(b)
	}
	rep.snapSize = env.snapSize

	notif := wrkSettings{Threads: o.threads, Connections: o.conns, Duration: o.duration, Timeout: 30 * time.Second}
	snap := notif
	snap.Connections = o.snapConns
	host := "Host: localhost"
	gz := "Accept-Encoding: gzip"
	type pair struct {
		name    string
		s       wrkSettings
		nginx   string // path on nginx; empty: the proxy alone
		proxy   string
		headers []string
	}
	pairs := []pair{
		{"notification.xml", notif, env.nginxNotif, env.proxyNotif, []string{host}},
		{"notification.xml, gzip", notif, env.nginxNotif, env.proxyNotif, []string{host, gz}},
		{"snapshot.xml", snap, env.nginxSnap, env.proxySnap, []string{host}},
		{"snapshot.xml, gzip", snap, env.nginxSnap, env.proxySnap, []string{host, gz}},
		{"notification.bin", notif, "", env.proxyNotifBin, []string{host}},
		{"snapshot.bin", snap, "", env.proxySnapBin, []string{host}},
	}
	for _, p := range pairs {
		if !o.gzip && strings.HasSuffix(p.name, "gzip") {
			continue
		}
		row := httpRow{name: p.name}
		measure := func(server, base, path string) (*httpRun, error) {
			w := newWrkRun(o.wrk, p.s, base+path[1:], p.headers...)
			if err := waitLoad(ctx, o.maxLoad, o.maxWait); err != nil {
				return nil, err
			}
			run := &httpRun{cmd: w.String(), load: loadAverages()}
			fmt.Fprintf(progress, "bench http: load %s: %s\n", run.load, run.cmd)
			r, out, err := w.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("bench http: %w\n%s", err, out)
			}
			if r.Non2xx3xx > 0 {
				return nil, fmt.Errorf("bench http: %s: %d responses were not 2xx or 3xx\n%s", w, r.Non2xx3xx, out)
			}
			if r.Requests == 0 {
				return nil, fmt.Errorf("bench http: %s: no request completed\n%s", w, out)
			}
			run.res = r
			if o.raw != "" {
				name := fmt.Sprintf("%02d-%s-%s.txt", rep.runs, strings.NewReplacer(", ", "-", ".", "-").Replace(p.name), server)
				rep.runs++
				if err := os.MkdirAll(o.raw, 0o755); err != nil {
					return nil, fmt.Errorf("bench http: %w", err)
				}
				if err := os.WriteFile(filepath.Join(o.raw, name), out, 0o644); err != nil {
					return nil, fmt.Errorf("bench http: %w", err)
				}
			}
			return run, nil
		}
		for round := range o.rounds {
			servers := []string{"nginx", "proxy"}
			if round%2 == 1 { // alternate the order against drifting load
				servers[0], servers[1] = servers[1], servers[0]
			}
			for _, server := range servers {
				switch {
				case server == "nginx" && p.nginx != "":
					run, err := measure(server, env.nginxURL, p.nginx)
					if err != nil {
						return nil, err
					}
					row.nginx = append(row.nginx, run)
				case server == "proxy":
					run, err := measure(server, env.proxyURL, p.proxy)
					if err != nil {
						return nil, err
					}
					row.proxy = append(row.proxy, run)
				}
			}
		}
		rep.rows = append(rep.rows, row)
	}
	rep.loadAfter = loadAverages()
	return rep, nil
}

// waitLoad waits until the 1-minute load average is at most max, for at
// most wait; max 0 returns at once.
func waitLoad(ctx context.Context, max float64, wait time.Duration) error {
	if max <= 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		l, err := strconv.ParseFloat(strings.Fields(loadAverages() + " x")[0], 64)
		if err != nil || l <= max || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench http: wait for load %.2f: %w", max, ctx.Err())
		case <-tick.C:
		}
	}
}

// toolVersions returns the first line of nginx -v and wrk -v.
func toolVersions(ctx context.Context, nginx, wrk string) []string {
	var vs []string
	for _, c := range [][]string{{nginx, "-v"}, {wrk, "-v"}} {
		out, _ := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput() // wrk -v exits 1
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line != "" {
			vs = append(vs, line)
		}
	}
	return append(vs, runtime.Version())
}
