package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const decodeAbout = `Measure how fast a relying party decodes one snapshot, three ways, in one
run: snapshot.bin with irpki.Reader (every group's pin checked, every
object delivered), snapshot.xml with this project's decoder (rrdpxml:
every URI checked, every object base64-decoded) and snapshot.xml with a
straightforward encoding/xml decoder (token loop and base64). All three
hash their input with SHA-256, as an RP checks it against the
notification. The .bin is transcoded from the XML before timing; files
are read into memory first, so no disk is measured.

The runs are interleaved (one of each, --count times) after a warm-up;
the report gives the median, the throughput on each decoder's own input
and the ratios. The argument is a snapshot.xml, or a repository directory
whose rrdp/notification.xml names one. Prints the report (Markdown); with
--out DIR, writes it into DIR/decode.md too.`

// decodeTiming is the measured speed of one decoder.
type decodeTiming struct {
	dec    rpDecoder
	input  int64
	median time.Duration
	min    time.Duration
	cpu    time.Duration // median CPU time of the process (user+system) per run
}

func decodeCommand(stdout io.Writer) *cli.Command {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	out := fs.String("out", "", "also write decode.md into `DIR`")
	count := fs.Int("count", 10, "timed runs of each decoder")
	return &cli.Command{
		Name: "decode", Args: "[flags] SNAPSHOT_XML|REPO_DIR...", Summary: "relying-party decoding speed of snapshots, .bin against XML",
		About: decodeAbout, Flags: fs, MinArgs: 1, MaxArgs: cli.Many,
		Run: func(args []string) error {
			return benchDecode(commandLine("decode", fs, args), args, *out, *count, stdout)
		},
	}
}

// benchDecode measures the snapshots args name and prints the report.
func benchDecode(command string, args []string, out string, count int, stdout io.Writer) error {
	if count < 1 {
		return cli.Usagef("--count %d: want at least 1", count)
	}
	setup := decodeSetup{
		command: command,
		count:   count, cpu: cpuModel(), load: loadAverage(), procs: runtime.GOMAXPROCS(0), goVersion: runtime.Version(),
	}
	var runs []decodeRun
	for _, arg := range args {
		path, err := findSnapshot(arg)
		if err != nil {
			return err
		}
		x, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		var bin bytes.Buffer
		if _, err := irpki.XMLToBin(&bin, bytes.NewReader(x), irpki.Options{}); err != nil {
			return fmt.Errorf("transcode %s to .bin: %w", path, err)
		}
		timings, res, err := timeDecoders(x, bin.Bytes(), count)
		if err != nil {
			return err
		}
		runs = append(runs, decodeRun{name: arg, res: res, timings: timings})
	}
	md := decodeMarkdown(setup, runs)
	stdout.Write(md)
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	if err := os.WriteFile(filepath.Join(out, "decode.md"), md, 0o644); err != nil {
		return fmt.Errorf("write decode.md: %w", err)
	}
	return nil
}

// decodeRun is the measurement of one snapshot.
type decodeRun struct {
	name    string
	res     decodeResult
	timings []decodeTiming
}

// timeDecoders runs every decoder once to check that they agree, then
// count times each, interleaved.
func timeDecoders(x, bin []byte, count int) ([]decodeTiming, decodeResult, error) {
	var first decodeResult
	times := make([][]time.Duration, len(rpDecoders))
	cpus := make([][]time.Duration, len(rpDecoders))
	for i, d := range rpDecoders {
		res, err := d.parse(inputOf(d, x, bin))
		if err != nil {
			return nil, first, err
		}
		want := sha256.Sum256(inputOf(d, x, bin))
		if res.Sum != want {
			return nil, first, fmt.Errorf("%s: input hash %x, want %x", d.name, res.Sum, want)
		}
		if i == 0 {
			first = res
		} else if res.Objects != first.Objects || res.Bytes != first.Bytes {
			return nil, first, fmt.Errorf("%s: %d objects of %d bytes, but %s: %d of %d", d.name, res.Objects, res.Bytes, rpDecoders[0].name, first.Objects, first.Bytes)
		}
	}
	for range count {
		for i, d := range rpDecoders {
			in := inputOf(d, x, bin)
			runtime.GC()
			start, startCPU := time.Now(), cli.CPUTime()
			if _, err := d.parse(in); err != nil {
				return nil, first, err
			}
			times[i] = append(times[i], time.Since(start))
			cpus[i] = append(cpus[i], cli.CPUTime()-startCPU)
		}
	}
	var ts []decodeTiming
	for i, d := range rpDecoders {
		slices.Sort(times[i])
		slices.Sort(cpus[i])
		ts = append(ts, decodeTiming{dec: d, input: int64(len(inputOf(d, x, bin))), median: median(times[i]), min: times[i][0], cpu: median(cpus[i])})
	}
	return ts, first, nil
}

func inputOf(d rpDecoder, x, bin []byte) []byte {
	if d.bin {
		return bin
	}
	return x
}

// median of sorted durations.
func median(s []time.Duration) time.Duration {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// findSnapshot returns arg if it is a file, else the snapshot.xml under
// arg whose SHA-256 the repository's rrdp/notification.xml names.
func findSnapshot(arg string) (string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return "", fmt.Errorf("find snapshot: %w", err)
	}
	if !st.IsDir() {
		return arg, nil
	}
	nf, err := os.Open(filepath.Join(arg, "rrdp", "notification.xml"))
	if err != nil {
		return "", fmt.Errorf("find snapshot in %s: %w", arg, err)
	}
	defer nf.Close()
	n, _, err := rrdpxml.DecodeNotification(nf, rrdpxml.Limits{})
	if err != nil {
		return "", fmt.Errorf("find snapshot in %s: %w", arg, err)
	}
	var found string
	err = filepath.WalkDir(filepath.Join(arg, "rrdp"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || found != "" || e.IsDir() || e.Name() != "snapshot.xml" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sha256.Sum256(b) == n.Snapshot.Hash {
			found = p
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("find snapshot in %s: %w", arg, err)
	}
	if found == "" {
		return "", fmt.Errorf("find snapshot in %s: no snapshot.xml with hash %x", arg, n.Snapshot.Hash)
	}
	return found, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage is the first field of /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

type decodeSetup struct {
	command        string
	count, procs   int
	cpu, goVersion string
	load           string // the 1-minute load average at the start
}

// decodeMarkdown renders the decoding report.
func decodeMarkdown(s decodeSetup, runs []decodeRun) []byte {
	var b bytes.Buffer
	t := mdTable{&b}
	fmt.Fprintf(&b, "# Relying-party decoding: snapshot.bin against snapshot.xml\n\n")
	fmt.Fprintf(&b, "Made by `%s`: median of %d interleaved runs after a warm-up, on %s,\n", s.command, s.count, s.cpu)
	fmt.Fprintf(&b, "GOMAXPROCS %d, %s, load average %s at the start. Each decoder reads the whole file from memory, hashes it (SHA-256, as an RP checks it\n", s.procs, s.goVersion, s.load)
	b.WriteString("against the notification) and delivers every object's bytes; the .bin reader also checks every group's pin,\n")
	b.WriteString("rrdpxml every URI. The .bin is transcoded from the XML before timing. The CPU time is the process's\n")
	b.WriteString("user and system time during the run (garbage collection included); it is the figure to compare on a busy\n")
	b.WriteString("machine, where wall time mostly measures waiting for a CPU.\n")
	for _, r := range runs {
		ts := r.timings
		fmt.Fprintf(&b, "\n## %s\n\n%d objects, %s of object bytes.\n\n", r.name, r.res.Objects, humanBytes(r.res.Bytes))
		t.head("decoder", "input", "CPU time (median)", "MB/s of its input (CPU)", "CPU vs .bin", "wall (median)", "wall (fastest)")
		base := ts[0].cpu
		for _, d := range ts {
			t.row(d.dec.name, humanBytes(d.input), fmtMS(d.cpu), fmt.Sprintf("%.0f", float64(d.input)/1e6/d.cpu.Seconds()), fmt.Sprintf("%.2f×", float64(d.cpu)/float64(base)), fmtMS(d.median), fmtMS(d.min))
		}
	}
	b.WriteString("\n## Beside the paper\n\n")
	b.WriteString("The paper reports relying-party decoding of 101.4 ms (XML) against 11.1 ms (.bin), 9.1×, and for the container\n")
	b.WriteString("alone 31% faster parsing. Ours, as the CPU time of the XML decoder over the CPU time of the .bin reader:\n\n")
	t.head("snapshot", "encoding/xml / .bin", "rrdpxml / .bin", ".bin time saved against rrdpxml")
	for _, r := range runs {
		ts := r.timings
		bin, fast, slow := float64(ts[0].cpu), float64(ts[1].cpu), float64(ts[2].cpu)
		t.row(r.name, fmt.Sprintf("%.1f×", slow/bin), fmt.Sprintf("%.2f×", fast/bin), fmt.Sprintf("%+.0f%%", 100*(1-bin/fast)))
	}
	b.WriteString(`
The paper's snapshot and decoders are not ours, so only the ratios compare. Our .bin carries every object as the
DER that was published (CMS signature and EE certificate included), so the .bin reader still copies and hashes
all those bytes; what it saves is scanning XML and decoding base64. The objects stay DER, which an RP parses and
verifies afterwards whichever file it read.
`)
	slower := false
	for _, r := range runs {
		slower = slower || r.timings[0].cpu > r.timings[1].cpu
	}
	if slower {
		b.WriteString(`
Where the .bin reader is slower than rrdpxml: irpki.Reader hands out one whole group (publication point) at a
time, checked against its pin, so it reads each group into one buffer (grown geometrically with the bytes that
arrived, reused across groups and readers) and hashes every byte twice, the file's SHA-256 and the group's pin,
on one core; rrdpxml hashes the input on a second goroutine while it scans. Both hashes are required: the file
hash is checked against the notification, the pin lets an RP trust one group alone. On one core the two hashes
are about two thirds of the .bin reader's time.
`)
	}
	return b.Bytes()
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
