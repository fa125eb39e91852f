package rp

import (
	"github.com/irpki/rrdp-proxy/transcode/rpki"

	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Options configures one relying party run. TAL and CAFile are required.
type Options struct {
	// TAL is the Trust Anchor Locator file (RFC 8630). Its base name
	// without ".tal" names the trust anchor in rpki-client's output.
	TAL string
	// CAFile is the PEM certificate of the only CA the relying party
	// trusts for HTTPS (PKI.CAFile).
	CAFile string
	// CacheDir is the relying party's cache. Pass the same directory to
	// a later run to make it sync incrementally, as a relying party in
	// production does. Empty means a temporary directory, removed after
	// the run. rpki-client runs as root take it over (chown to
	// _rpki-client).
	CacheDir string
	// Time, if not zero, is the wall clock the relying party starts at
	// (through faketime); the clock runs on from there. Use it for
	// repositories whose objects are valid only in the past, such as the
	// Krill data set (2023-02-14).
	Time time.Time
	// Binary is the relying party executable; empty means "rpki-client"
	// or "fort" on PATH.
	Binary string
	// Args are extra command-line arguments, appended last.
	Args []string
}

func (o *Options) check(op string) error {
	if o.TAL == "" {
		return fmt.Errorf("%s: no TAL", op)
	}
	if o.CAFile == "" {
		return fmt.Errorf("%s: no CA file", op)
	}
	return nil
}

// defaultTimeout bounds a run whose context has no deadline.
const defaultTimeout = 2 * time.Minute

// Result is the outcome of one relying party run.
type Result struct {
	// RP is "rpki-client" or "fort".
	RP string
	// Command is the command line that was run.
	Command []string
	// VRPs are the Validated ROA Payloads the relying party wrote, sorted.
	VRPs []rpki.VRP
	// Stdout and Stderr are the relying party's complete output.
	Stdout, Stderr string
	// ExitCode is the exit status (-1 when killed by a signal).
	ExitCode int
	// Problems are the log lines that report an error or a warning, in
	// the order of the log (see the package documentation for the
	// patterns), and the problems of the harness itself, such as a
	// missing VRP file.
	Problems []string
	// Elapsed is the wall-clock duration of the run.
	Elapsed time.Duration
	// Output holds the relying party's output files by name, as written:
	// rpki-client's "csv" and "json", FORT's "vrps.csv".
	Output map[string][]byte
}

// Err returns nil when the run exited with status 0 and logged no problem;
// otherwise an error that names the exit status and the first problems.
func (r *Result) Err() error {
	if r.ExitCode == 0 && len(r.Problems) == 0 {
		return nil
	}
	const maxLines = 10
	var b strings.Builder
	fmt.Fprintf(&b, "%s exited with status %d and %d problems", r.RP, r.ExitCode, len(r.Problems))
	for i, p := range r.Problems {
		if i == maxLines {
			fmt.Fprintf(&b, "\n  ... %d more", len(r.Problems)-maxLines)
			break
		}
		b.WriteString("\n  " + p)
	}
	return errors.New(b.String())
}

// rpki-client logs every message to stderr as "rpki-client: MESSAGE",
// without a level. These are the messages of -v for a clean run; every
// other stderr line is a problem.
var rpkiClientBenign = []*regexp.Regexp{
	regexp.MustCompile(`^rpki-client: \S+: pulling from \S+$`),
	regexp.MustCompile(`^rpki-client: \S+: loaded from network$`),
	regexp.MustCompile(`^rpki-client: \S+: downloading snapshot$`),
	regexp.MustCompile(`^rpki-client: \S+: downloading \d+ deltas$`),
	regexp.MustCompile(`^rpki-client: \S+: notification file not modified$`),
	regexp.MustCompile(`^rpki-client: \S+: repository not modified$`),
	regexp.MustCompile(`^rpki-client: all files parsed: generating output$`),
}

// rpki-client's summary on stdout counts failures in parentheses, e.g.
// "Route Origin Authorizations: 100 (0 failed parse, 0 invalid)".
var rpkiClientCounts = regexp.MustCompile(`\((\d+) (?:failed parse|invalid)(?:, (\d+) (?:invalid|stale))?\)`)

// rpkiClientProblems classifies rpki-client's output.
func rpkiClientProblems(stdout, stderr string) []string {
	var probs []string
	for line := range strings.Lines(stderr) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || matchAny(rpkiClientBenign, line) {
			continue
		}
		probs = append(probs, line)
	}
	for line := range strings.Lines(stdout) {
		line = strings.TrimRight(line, "\r\n")
		m := rpkiClientCounts.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, n := range m[1:] {
			if v, _ := strconv.Atoi(n); v > 0 {
				probs = append(probs, line)
				break
			}
		}
	}
	return probs
}

// FORT prefixes each line with a time stamp and a level, and a tag for the
// validation log: "Feb 14 00:00:00 ERR [Validation]: MESSAGE".
var fortLine = regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d (DBG|INF|WRN|ERR|CRT)(?: \[[^\]]*\])?: (.*)$`)

// FORT logs these warnings in every clean run.
var fortBenignWarnings = []*regexp.Regexp{
	regexp.MustCompile(`^The validation has begun\.$`),
	regexp.MustCompile(`^The validation has successfully ended\.$`),
	regexp.MustCompile(`^First validation cycle has begun, wait until the next notification to connect your router\(s\)$`),
	regexp.MustCompile(`^First validation cycle successfully ended, now you can connect your router\(s\)$`),
}

// fortProblem reports whether a line of FORT's output is a problem: ERR and
// CRT lines, WRN lines other than the benign ones, and lines that do not
// have FORT's log format.
func fortProblem(line string) bool {
	if line == "" {
		return false
	}
	m := fortLine.FindStringSubmatch(line)
	if m == nil {
		return true
	}
	switch m[1] {
	case "DBG", "INF":
		return false
	case "WRN":
		return !matchAny(fortBenignWarnings, m[2])
	}
	return true
}

func fortProblems(outputs ...string) []string {
	var probs []string
	for _, out := range outputs {
		for line := range strings.Lines(out) {
			line = strings.TrimRight(line, "\r\n")
			if fortProblem(line) {
				probs = append(probs, line)
			}
		}
	}
	return probs
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
