package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

const benchFollowAbout = `Following benchmark (issue 14's acceptance): real rrdp-proxy serve
processes, one binary after the other (--bin NAME=PATH, repeated, so that
today's binary and a new build are measured in one run), each following
a repository made by rrdp-proxy gen (--repo DIR, repeated; read, never
changed) served by an HTTPS origin on 127.0.0.1 in this process. Each child
runs with a state directory, poll_interval 1s (the shortest the
configuration accepts), jitter 0.01, in the mode --mode names:

  mirror   (the default) under its own mirror_base;
  reverse  transparent, under the public name https://localhost:PORT/
           (PORT the child's own), fetch_from the origin's 127.0.0.1 port
           over TLS; after every serial the bench checks that the child
           serves the origin's bytes: the notification, the snapshot
           (identity and gzip) and the newest delta, byte for byte.

serials: the origin moves by serials changing --changes objects each (the
benchmark writes the delta, whose replacing publishes carry the hash of
what they replace, the snapshot and the notification; changed bytes, not
new signatures: the follower checks hashes). For each: the time from the
new notification to the child serving it (polled every 20 ms), the part
of it after the child's first fetch of that notification, the child's
CPU time over it, its peak RSS (VmHWM, reset before) and RSS, and the bytes of the current state
it serves (both notifications and every file they name, identity and
gzip).

faults (--faults, on the first --repo): a gzip bomb (--bomb-size decoded)
and a body of --huge-size bytes with a bad hash, each offered as the
snapshot of the next serial: peak RSS above the steady state, and whether
the old state is still served.

soak (--soak D, on --soak-repo): a new serial every --soak-every for D:
RSS and the state directory's size over time (with --disk, the cap's
figures from /metrics too), then a restart with the origin down: the time
to /readyz 200 and to the notification served.

--cpuprofile DIR writes DIR/RUN-N.pprof for each serial of N changed
objects: the child's CPU for --profile-for from the new notification on
(net/http/pprof on an admin listener; go tool pprof reads it).

--max-rss kills a child above it (the figure then says so). The Markdown
report is printed; with --out FILE it is written there too.`

// benchFollowOptions are the flags of bench follow.
type benchFollowOptions struct {
	bins          []followBin
	repos         []string
	out           string
	changes       []int
	faults        bool
	bombSize      int64
	hugeSize      int64
	soak          time.Duration
	soakEvery     time.Duration
	soakRepo      string
	soakChanges   int
	soakParallel  bool
	disk          string
	maxRSS        int64
	syncTimeout   time.Duration
	seed          uint64
	command       string
	keepTemporary bool
	// mode is the children's repository mode: modeMirror (also "") or
	// modeReverse.
	mode string
	// cpuProfile, if set, is a directory for a CPU profile of the child
	// during each serial, from the new notification on for profileFor.
	cpuProfile string
	profileFor time.Duration
	// pause is how long the child settles before and after a serial (and
	// 3, 2 and 8 times it around a fault): 1s; tests shorten it.
	pause time.Duration
}

// The modes of bench follow's children.
const (
	modeMirror  = "mirror"
	modeReverse = "reverse"
)

// followBin is a binary under test.
type followBin struct{ name, path string }

func followCommand(stdout, stderr io.Writer) *cli.Command {
	var o benchFollowOptions
	fs := flag.NewFlagSet("follow", flag.ContinueOnError)
	fs.Func("bin", "binary under test as `NAME=PATH` (repeatable; default main=rrdp-proxy-main)", func(s string) error {
		name, p, ok := strings.Cut(s, "=")
		if !ok || name == "" || p == "" {
			return fmt.Errorf("want NAME=PATH, got %q", s)
		}
		o.bins = append(o.bins, followBin{name, p})
		return nil
	})
	fs.Func("repo", "repository `directory` made by rrdp-proxy gen (repeatable)", func(s string) error {
		o.repos = append(o.repos, s)
		return nil
	})
	fs.StringVar(&o.mode, "mode", modeMirror, "mode of the children's repository: `mirror or reverse`")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the child during each serial (its pprof on an admin listener) into `directory`")
	fs.DurationVar(&o.profileFor, "profile-for", 30*time.Second, "`length` of each serial's CPU profile, from the new notification on (with --cpuprofile; each serial then lasts at least this long)")
	changes := fs.String("changes", "1,100,10000", "changed objects of each serial, `N,N,...`")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report into this `file`")
	fs.BoolVar(&o.faults, "faults", true, "offer the gzip bomb and the huge body on the first --repo")
	bomb := fs.Int("bomb-mib", 6<<10, "decoded `MiB` of the gzip bomb")
	huge := fs.Int("huge-mib", 2<<10, "`MiB` of the body with a bad hash")
	fs.DurationVar(&o.soak, "soak", 0, "`length` of the soak run (0: none)")
	fs.DurationVar(&o.soakEvery, "soak-every", time.Second, "`interval` between the soak's serials")
	fs.StringVar(&o.soakRepo, "soak-repo", "", "repository `directory` of the soak (default: the first --repo; alone, only the soak runs)")
	fs.IntVar(&o.soakChanges, "soak-changes", 10, "changed objects of each soak serial")
	fs.BoolVar(&o.soakParallel, "soak-parallel", false, "soak the binaries at the same time, each with its own origin")
	fs.StringVar(&o.disk, "disk", "", "cache.disk of the children, the `size` their state directory may hold (empty: the binary's default; a binary without the key fails)")
	maxRSS := fs.Int("max-rss-mib", 8<<10, "kill a child whose RSS exceeds this many `MiB` (0: never)")
	fs.DurationVar(&o.syncTimeout, "sync-timeout", 10*time.Minute, "longest wait for a child to serve a serial")
	fs.Uint64Var(&o.seed, "seed", 1, "`seed` choosing the changed objects")
	fs.BoolVar(&o.keepTemporary, "keep", false, "keep the temporary directory (origins, state directories, logs)")
	return &cli.Command{
		Name: "follow", Args: "[flags]", Summary: "time to a new serial, memory, faults and a soak of rrdp-proxy serve processes",
		About: benchFollowAbout, Flags: fs,
		Run: func(args []string) error {
			var err error
			if o.changes, err = parseInts(*changes); err != nil {
				return cli.Usagef("--changes: %v", err)
			}
			if o.mode != modeMirror && o.mode != modeReverse {
				return cli.Usagef("--mode: want mirror or reverse, got %q", o.mode)
			}
			if len(o.repos) == 0 && (o.soak == 0 || o.soakRepo == "") {
				return cli.Usagef("want at least one --repo, or --soak with --soak-repo")
			}
			if len(o.bins) == 0 {
				o.bins = []followBin{{"main", "rrdp-proxy-main"}}
			}
			if o.soakRepo == "" {
				o.soakRepo = o.repos[0]
			}
			o.bombSize, o.hugeSize, o.maxRSS = int64(*bomb)<<20, int64(*huge)<<20, int64(*maxRSS)<<20
			o.command = followCommandLine(fs, o)
			o.pause = time.Second
			return benchFollowRun(o, stdout, stderr)
		},
	}
}

// parseInts parses "1,100,10000".
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive numbers separated by commas, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchFollowRun runs bench follow with the options o.
func benchFollowRun(o benchFollowOptions, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tmp, err := os.MkdirTemp("", "rrdp-proxy-bench-follow-")
	if err != nil {
		return fmt.Errorf("bench follow: %w", err)
	}
	if o.keepTemporary {
		fmt.Fprintf(stderr, "bench follow: keeping %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	pki, err := rp.NewPKI(tmp, rp.PKIConfig{})
	if err != nil {
		return fmt.Errorf("bench follow: %w", err)
	}
	e := &followEnv{o: o, tmp: tmp, pki: pki, progress: stderr}
	rep := &followReport{machine: readMachine(), opts: o}
	for _, b := range o.bins {
		rep.versions = append(rep.versions, binVersion(ctx, b))
	}
	for i, repo := range o.repos {
		rr := &repoRuns{repo: repo}
		for _, b := range o.bins {
			r, err := e.serials(ctx, b, repo, i == 0 && o.faults)
			if err != nil {
				return err
			}
			rr.runs = append(rr.runs, r)
		}
		rep.repos = append(rep.repos, rr)
	}
	if o.soak > 0 {
		rep.soaks = make([]*soakResult, len(o.bins))
		errs := make([]error, len(o.bins))
		var wg sync.WaitGroup
		for i, b := range o.bins {
			soak := func() { rep.soaks[i], errs[i] = e.soakRun(ctx, b, o.soakRepo) }
			if !o.soakParallel {
				soak()
				continue
			}
			wg.Go(soak)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	rep.loadAfter = loadAverages()
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

// binVersion is the first line of bin --version.
func binVersion(ctx context.Context, b followBin) string {
	out, err := execOutput(ctx, b.path, "--version")
	if err != nil {
		return fmt.Sprintf("%s (%s): %v", b.name, b.path, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return fmt.Sprintf("%s = `%s`: %s", b.name, b.path, line)
}

// followCommandLine is the command as the report records it, each
// repeated flag once per value.
func followCommandLine(fs *flag.FlagSet, o benchFollowOptions) string {
	words := []string{"rrdp-proxy-bench", "follow"}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "bin":
			for _, b := range o.bins {
				words = append(words, "--bin", b.name+"="+b.path)
			}
		case "repo":
			for _, r := range o.repos {
				words = append(words, "--repo", r)
			}
		default:
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && f.Value.String() == "true" {
				words = append(words, "--"+f.Name)
				return
			}
			words = append(words, "--"+f.Name, f.Value.String())
		}
	})
	return strings.Join(words, " ")
}
