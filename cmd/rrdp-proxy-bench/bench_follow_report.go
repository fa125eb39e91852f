package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// followReport is the result of bench follow.
type followReport struct {
	machine   machine
	opts      benchFollowOptions
	versions  []string
	repos     []*repoRuns
	soaks     []*soakResult
	loadAfter string
}

// repoRuns are the runs of every binary on one repository.
type repoRuns struct {
	repo string
	runs []*followRun
}

// cells formats one figure of every run, then the ratio of each later run
// to the first: the columns of a side-by-side table.
func sideBySide(n int, figure func(i int) (string, float64), load func(i int) string) []string {
	var cells []string
	var first float64
	for i := range n {
		s, v := figure(i)
		if i == 0 {
			first = v
		}
		cells = append(cells, s, load(i))
	}
	for i := 1; i < n; i++ {
		_, v := figure(i)
		if v == 0 || first == 0 {
			cells = append(cells, "n/a")
			continue
		}
		cells = append(cells, ratioF(v, first))
	}
	return cells
}

// header is the head of a side-by-side table.
func (r *followReport) header(t mdTable, first string) {
	cells := []string{first}
	for _, b := range r.opts.bins {
		cells = append(cells, b.name, "load")
	}
	for _, b := range r.opts.bins[1:] {
		cells = append(cells, b.name+"/"+r.opts.bins[0].name)
	}
	t.head(cells...)
}

func secs(d time.Duration) (string, float64) {
	if d == 0 {
		return "n/a", 0
	}
	return fmt.Sprintf("%.3f s", d.Seconds()), d.Seconds()
}

func mibF(n int64) (string, float64) {
	if n == 0 {
		return "n/a", 0
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)), float64(n)
}

// markdown renders the report.
func (r *followReport) markdown() string {
	var b bytes.Buffer
	t := mdTable{&b}
	m, o := r.machine, r.opts
	b.WriteString("# Following: time to a new serial, memory, faults, soak\n\n")
	fmt.Fprintf(&b, "Made by `%s` (see `rrdp-proxy-bench follow --help`) on %s UTC.\n\n", o.command, m.time.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "- Machine: %d cores (%s), shared with other work; load average (1, 5, 15 min) %s at the start, %s at the end;\n", m.cpus, m.cpu, m.load, r.loadAfter)
	b.WriteString("  the `load` columns are the 1-minute load average before each figure.\n")
	fmt.Fprintf(&b, "- Binaries: %s.\n", strings.Join(r.versions, "; "))
	if o.mode == modeReverse {
		b.WriteString("- Each binary runs as `rrdp-proxy serve`, one after the other, reverse (transparent) mode under the public name\n")
		b.WriteString("  https://localhost:PORT/ (its own port) with `fetch_from` the origin's 127.0.0.1 port over TLS, a state directory,\n")
		b.WriteString("  `memory = \"256MiB\"`,")
	} else {
		b.WriteString("- Each binary runs as `rrdp-proxy serve`, one after the other, mirror mode, a state directory, `memory = \"256MiB\"`,\n ")
	}
	b.WriteString(" poll_interval 1s with jitter 0.01, following an HTTPS origin on 127.0.0.1 in the benchmark's process. The origin\n")
	b.WriteString("  starts at the repository's serial 1; each further serial is written by the benchmark (a delta replacing the\n")
	b.WriteString("  content of N objects by other bytes, each publish with the hash it replaces, the whole snapshot, then the\n")
	b.WriteString("  notification listing up to 50 deltas). Every binary sees the same serials (seeded).\n")
	b.WriteString("- *to served*: from the origin's new notification to the child's notification.xml naming the serial (polled every\n")
	b.WriteString("  20 ms), so it includes up to one poll interval; *after its poll*: from the child's first fetch of that notification.\n")
	b.WriteString("  *CPU of the child*: its user and system time over *to served* (/proc/PID/stat, 10 ms ticks; the first sync's\n")
	b.WriteString("  from its start), less sensitive than the times to the other work on the machine.\n")
	b.WriteString("  *peak RSS*: VmHWM, reset (`/proc/PID/clear_refs`) just before the serial, and a 100 ms sampler of VmRSS,\n")
	b.WriteString("  read 1 s after the child holds its whole state in memory again (*served to all in memory*: a cold serial's\n")
	b.WriteString("  segments are read back from the state directory after its head is served; /status.json `cold_bytes` 0).\n")
	b.WriteString("  *served*: bytes of the current state the child serves: notification.xml and .bin and every file they name,\n")
	b.WriteString("  identity and gzip.\n")
	if o.mode == modeReverse {
		b.WriteString("- *the origin's bytes served*: after the figures of each serial, the child's notification.xml is compared with the\n")
		b.WriteString("  origin's byte for byte, and the snapshot it names (identity, and gzip decoded) and its newest delta with the\n")
		b.WriteString("  origin's files (length and SHA-256); a difference stops the run with an error.\n")
	}
	if o.cpuProfile != "" {
		fmt.Fprintf(&b, "- A CPU profile of each serial (pprof, 100 Hz, %v from the new notification on) went into `%s`.\n", o.profileFor, o.cpuProfile)
	}
	b.WriteString("\n")
	for _, rr := range r.repos {
		r.repoMarkdown(&b, t, rr)
	}
	if len(r.soaks) > 0 {
		r.soakMarkdown(&b, t)
	}
	return b.String()
}

func (r *followReport) repoMarkdown(b *bytes.Buffer, t mdTable, rr *repoRuns) {
	n := len(rr.runs)
	fmt.Fprintf(b, "## Serials and faults: %s (%d objects)\n\n", rr.repo, rr.runs[0].objects)
	r.header(t, "measure")
	load := func(f func(*followRun) string) func(int) string {
		return func(i int) string { return f(rr.runs[i]) }
	}
	row := func(name string, fig func(*followRun) (string, float64), ld func(*followRun) string) {
		t.row(append([]string{name}, sideBySide(n, func(i int) (string, float64) { return fig(rr.runs[i]) }, load(ld))...)...)
	}
	initLoad := func(f *followRun) string { return f.initial.load }
	row("first sync (snapshot), start to served", func(f *followRun) (string, float64) { return secs(f.initial.total) }, initLoad)
	row("first sync: CPU of the child", func(f *followRun) (string, float64) { return secs(f.initial.cpu) }, initLoad)
	row("first sync: peak RSS", func(f *followRun) (string, float64) { return mibF(f.initial.peak) }, initLoad)
	row("first sync: served bytes", func(f *followRun) (string, float64) { return mibF(f.initial.served) }, initLoad)
	checked := func(name string, st func(*followRun) *followStep, ld func(*followRun) string) {
		if r.opts.mode != modeReverse {
			return
		}
		t.row(append([]string{name}, sideBySide(n, func(i int) (string, float64) {
			if st(rr.runs[i]).checked {
				return "yes", 1
			}
			return "no", 0
		}, load(ld))...)...)
	}
	checked("first sync: the origin's bytes served", func(f *followRun) *followStep { return &f.initial }, initLoad)
	for k, changes := range r.opts.changes {
		st := func(f *followRun) *followStep {
			if k < len(f.steps) {
				return &f.steps[k]
			}
			return &followStep{}
		}
		ld := func(f *followRun) string { return st(f).load }
		label := fmt.Sprintf("%d changed", changes)
		row(label+": to served", func(f *followRun) (string, float64) { return secs(st(f).total) }, ld)
		row(label+": after its poll", func(f *followRun) (string, float64) { return secs(st(f).afterPoll) }, ld)
		row(label+": CPU of the child, to served", func(f *followRun) (string, float64) { return secs(st(f).cpu) }, ld)
		row(label+": served to all in memory", func(f *followRun) (string, float64) { return secs(st(f).inMemory) }, ld)
		row(label+": peak RSS", func(f *followRun) (string, float64) { return mibF(st(f).peak) }, ld)
		row(label+": RSS after", func(f *followRun) (string, float64) { return mibF(st(f).rss) }, ld)
		row(label+": served bytes", func(f *followRun) (string, float64) { return mibF(st(f).served) }, ld)
		row(label+": peak RSS / served bytes", func(f *followRun) (string, float64) {
			s := st(f)
			if s.served == 0 {
				return "n/a", 0
			}
			v := float64(s.peak) / float64(s.served)
			return fmt.Sprintf("%.2f", v), v
		}, ld)
		row(label+": pinned_bytes", func(f *followRun) (string, float64) { return mibF(st(f).pinned) }, ld)
		checked(label+": the origin's bytes served", st, ld)
	}
	for k := range maxFaults(rr.runs) {
		fr := func(f *followRun) *faultResult {
			if k < len(f.faults) {
				return &f.faults[k]
			}
			return &faultResult{}
		}
		what := ""
		for _, f := range rr.runs {
			if k < len(f.faults) {
				what = f.faults[k].what
			}
		}
		ld := func(f *followRun) string { return fr(f).load }
		row(what+": steady RSS", func(f *followRun) (string, float64) { return mibF(fr(f).steady) }, ld)
		row(what+": peak RSS above steady", func(f *followRun) (string, float64) {
			if fr(f).peak == 0 {
				return "n/a", 0
			}
			return mibF(max(fr(f).peak-fr(f).steady, 1))
		}, ld)
		row(what+": RSS 10 s later", func(f *followRun) (string, float64) { return mibF(fr(f).after) }, ld)
		row(what+": offer to the child's log naming it", func(f *followRun) (string, float64) { return secs(fr(f).took) }, ld)
		t.row(append([]string{what + ": old state served"}, sideBySide(n, func(i int) (string, float64) {
			f := fr(rr.runs[i])
			if f.what == "" {
				return "n/a", 0
			}
			if f.oldServed {
				return "yes", 1
			}
			return "no", 0
		}, load(ld))...)...)
	}
	b.WriteString("\n")
	for _, f := range rr.runs {
		if f.err != "" {
			fmt.Fprintf(b, "- %s stopped early: %s\n", f.bin, f.err)
		}
		if f.initial.servedErr != "" {
			fmt.Fprintf(b, "- %s, first sync: served bytes unknown: %s\n", f.bin, f.initial.servedErr)
		}
		for _, st := range f.steps {
			if st.err != "" {
				fmt.Fprintf(b, "- %s, %d changed: %s\n", f.bin, st.changes, st.err)
			}
			if st.servedErr != "" {
				fmt.Fprintf(b, "- %s, %d changed: served bytes unknown: %s\n", f.bin, st.changes, st.servedErr)
			}
		}
		for _, fr := range f.faults {
			fmt.Fprintf(b, "- %s, %s: /status.json last_error %q; the log's first line naming the file: %q", f.bin, fr.what, fr.lastError, fr.logLine)
			if fr.err != "" {
				fmt.Fprintf(b, "; %s", fr.err)
			}
			b.WriteString("\n")
		}
		var prep []string
		for _, st := range f.steps {
			prep = append(prep, fmt.Sprintf("%d: %.1f s", st.changes, st.prep.Seconds()))
		}
		fmt.Fprintf(b, "- %s: the benchmark wrote each serial's files (not timed above) in %s.\n", f.bin, strings.Join(prep, ", "))
	}
	b.WriteString("\n")
}

func maxFaults(runs []*followRun) int {
	n := 0
	for _, f := range runs {
		n = max(n, len(f.faults))
	}
	return n
}

// soakMarkdown renders the soak.
func (r *followReport) soakMarkdown(b *bytes.Buffer, t mdTable) {
	s0 := r.soaks[0]
	fmt.Fprintf(b, "## Soak: %s, a serial of %d changed objects every %v for %v\n\n", r.opts.soakRepo, s0.changes, s0.every, r.opts.soak)
	if r.opts.disk != "" {
		fmt.Fprintf(b, "The children's state directory is capped: `cache.disk = %q`.\n\n", r.opts.disk)
	}
	b.WriteString("Sampled every 5 s. *Flat*: the largest RSS after the first 2 minutes at most 1.1× the smallest. The restart: SIGTERM,\n")
	b.WriteString("the origin closed (connections refused), the same binary and state directory started again.")
	if r.opts.soakParallel {
		b.WriteString(" The binaries were soaked at the\nsame time (--soak-parallel), each with its own origin: they shared the cores.")
	}
	b.WriteString("\n\n")
	n := len(r.soaks)
	cells := []string{"measure"}
	for _, s := range r.soaks {
		cells = append(cells, s.bin, "load")
	}
	for _, s := range r.soaks[1:] {
		cells = append(cells, s.bin+"/"+s0.bin)
	}
	t.head(cells...)
	endLoad := func(i int) string {
		s := r.soaks[i]
		if len(s.samples) == 0 {
			return ""
		}
		return s.samples[len(s.samples)-1].load
	}
	row := func(name string, fig func(*soakResult) (string, float64), ld func(int) string) {
		t.row(append([]string{name}, sideBySide(n, func(i int) (string, float64) { return fig(r.soaks[i]) }, ld)...)...)
	}
	after := func(s *soakResult) (lo, hi soakSample, ok bool) {
		for _, smp := range s.samples {
			if smp.at < 2*time.Minute {
				continue
			}
			if !ok || smp.rss < lo.rss {
				lo = smp
			}
			if !ok || smp.rss > hi.rss {
				hi = smp
			}
			ok = true
		}
		return lo, hi, ok
	}
	at := func(s *soakResult, d time.Duration) soakSample {
		for _, smp := range s.samples {
			if smp.at >= d {
				return smp
			}
		}
		return soakSample{}
	}
	row("RSS at 2 min", func(s *soakResult) (string, float64) { return mibF(at(s, 2*time.Minute).rss) }, endLoad)
	row("RSS after 2 min: smallest", func(s *soakResult) (string, float64) { lo, _, _ := after(s); return mibF(lo.rss) }, endLoad)
	row("RSS after 2 min: largest", func(s *soakResult) (string, float64) { _, hi, _ := after(s); return mibF(hi.rss) }, endLoad)
	t.row(append([]string{"flat within 10% after 2 min"}, sideBySide(n, func(i int) (string, float64) {
		lo, hi, ok := after(r.soaks[i])
		if !ok || lo.rss == 0 {
			return "n/a", 0
		}
		v := float64(hi.rss) / float64(lo.rss)
		verdict := "no"
		if v <= 1.1 {
			verdict = "yes"
		}
		return fmt.Sprintf("%s (%.2f×)", verdict, v), v
	}, endLoad)...)...)
	row("largest RSS", func(s *soakResult) (string, float64) {
		var m int64
		for _, smp := range s.samples {
			m = max(m, smp.rss)
		}
		return mibF(m)
	}, endLoad)
	row("pinned_bytes at the end", func(s *soakResult) (string, float64) {
		if len(s.samples) == 0 {
			return "n/a", 0
		}
		return mibF(s.samples[len(s.samples)-1].pinned)
	}, endLoad)
	row("state directory at 2 min", func(s *soakResult) (string, float64) { return mibF(at(s, 2*time.Minute).state) }, endLoad)
	row("state directory, largest", func(s *soakResult) (string, float64) {
		var m int64
		for _, smp := range s.samples {
			m = max(m, smp.state)
		}
		return mibF(m)
	}, endLoad)
	row("state directory at the restart", func(s *soakResult) (string, float64) { return mibF(s.stateEnd) }, endLoad)
	if r.opts.disk != "" {
		last := func(s *soakResult) soakSample {
			if len(s.samples) == 0 {
				return soakSample{}
			}
			return s.samples[len(s.samples)-1]
		}
		row("state directory, largest, bytes", func(s *soakResult) (string, float64) {
			var m int64
			for _, smp := range s.samples {
				m = max(m, smp.state)
			}
			return fmt.Sprint(m), float64(m)
		}, endLoad)
		row("cache.disk used_bytes (metric), largest", func(s *soakResult) (string, float64) {
			var m float64
			for _, smp := range s.samples {
				m = max(m, smp.used)
			}
			return mibF(int64(m))
		}, endLoad)
		row("cache.disk current_bytes at the end", func(s *soakResult) (string, float64) { return mibF(int64(last(s).current)) }, endLoad)
		row("cache.disk evictions at the end", func(s *soakResult) (string, float64) {
			return fmt.Sprint(int64(last(s).evictions)), last(s).evictions
		}, endLoad)
		row("cache.disk over_max at the end", func(s *soakResult) (string, float64) {
			return fmt.Sprint(int64(last(s).over)), last(s).over
		}, endLoad)
	}
	row("serials published", func(s *soakResult) (string, float64) {
		return fmt.Sprint(s.published), float64(s.published)
	}, endLoad)
	row("largest lag (serials) at a sample", func(s *soakResult) (string, float64) {
		var m uint64
		for _, smp := range s.samples {
			if smp.served > 0 {
				m = max(m, smp.published-smp.served)
			}
		}
		return fmt.Sprint(m), float64(m)
	}, endLoad)
	row("catch-up after the last serial", func(s *soakResult) (string, float64) { return secs(s.catchUp) }, endLoad)
	rl := func(i int) string { return r.soaks[i].restartLoad }
	row("restart, origin down: to /readyz 200", func(s *soakResult) (string, float64) { return secs(s.ready) }, rl)
	row("restart, origin down: to the last serial served", func(s *soakResult) (string, float64) { return secs(s.notif) }, rl)
	b.WriteString("\n")
	for _, s := range r.soaks {
		if s.stopped != "" {
			fmt.Fprintf(b, "- %s: the soak stopped: %s\n", s.bin, s.stopped)
		}
		if s.restartErr != "" {
			fmt.Fprintf(b, "- %s: the restart: %s\n", s.bin, s.restartErr)
		}
		fmt.Fprintf(b, "- %s: the benchmark's longest write of a serial: %.2f s.\n", s.bin, s.prepMax.Seconds())
	}
	b.WriteString("\nOver time (each minute):\n\n")
	cells = []string{"time"}
	for _, s := range r.soaks {
		cells = append(cells, s.bin+" RSS", s.bin+" state dir", s.bin+" served/published", "load")
	}
	t.head(cells...)
	for m := time.Duration(0); m <= r.opts.soak; m += time.Minute {
		cells := []string{fmt.Sprintf("%d min", int(m.Minutes()))}
		for _, s := range r.soaks {
			smp := at(s, m)
			if smp.published == 0 {
				cells = append(cells, "", "", "", "")
				continue
			}
			cells = append(cells, mib(smp.rss), mib(smp.state), fmt.Sprintf("%d/%d", smp.served, smp.published), smp.load)
		}
		t.row(cells...)
	}
	b.WriteString("\n")
}
