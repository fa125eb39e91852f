package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

const validateAbout = `Validate RPKI trees offline, as a relying party does, and print the
Validated ROA Payloads on stdout in rpki-client's CSV format (ASN,IP
Prefix,Max Length,Trust Anchor,Expires), or with --json in rpki-client's
JSON format (VRPs and ASPAs).

TREE is a directory written by rrdp-proxy sync --out (objects as
TREE/<host>/<path> by their rsync URI), a directory holding several such
directories, or any directory of that layout (rpki-client's cache); several
TREEs may be given and are searched in turn.

Each --tal is a trust anchor locator (RFC 8630). The TA certificate is the
file beside the TAL named like the last part of one of its URIs, if it holds
the TAL's key; else the TAL's rsync URI in the tree; else it is fetched from
the TAL's https URIs (--ca-file adds a private CA for that fetch).

The validation is at --time (default: now). Every CA that fails, and every
object rejected, is reported on stderr with its URI and the reason; the
exit status is 1 only when no trust anchor could be used.`

// talList collects repeated --tal flags.
type talList []string

func (l *talList) String() string     { return strings.Join(*l, ",") }
func (l *talList) Set(s string) error { *l = append(*l, s); return nil }

// validateOptions are validate's flags.
type validateOptions struct {
	tals          talList
	at, caFile    string
	asJSON, asCSV bool
	quiet         bool
}

func validateCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	o := &validateOptions{}
	fs.Var(&o.tals, "tal", "validate from the TAL in `FILE` (repeatable, at least one)")
	fs.StringVar(&o.at, "time", "", "validate at this `RFC3339` time instead of now")
	fs.BoolVar(&o.asJSON, "json", false, "print rpki-client's JSON (VRPs and ASPAs) instead of CSV")
	fs.BoolVar(&o.asCSV, "csv", false, "print rpki-client's CSV (the default)")
	fs.StringVar(&o.caFile, "ca-file", "", "trust the CA certificates in this PEM `file` beside the system roots when fetching a TA certificate")
	fs.BoolVar(&o.quiet, "quiet", false, "do not report failing CAs and rejected objects on stderr")
	return &cli.Command{
		Name: "validate", Args: "--tal FILE [--tal FILE...] [--time RFC3339] [--json|--csv] TREE...",
		Summary: "validate RPKI trees offline and print the VRPs", About: validateAbout, Flags: fs, MinArgs: 1, MaxArgs: cli.Many,
		Run: func(args []string) error { return runValidate(o, args, stdout, stderr) },
	}
}

func runValidate(o *validateOptions, trees []string, stdout, stderr io.Writer) error {
	tals, at, caFile, asJSON, quiet := o.tals, &o.at, &o.caFile, &o.asJSON, &o.quiet
	if len(tals) == 0 {
		return cli.Usagef("at least one --tal is required")
	}
	if o.asJSON && o.asCSV {
		return cli.Usagef("--json and --csv exclude each other")
	}
	now := time.Now().UTC()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--time: %w", err)
		}
		now = t
	}
	tas := make([]rpki.TrustAnchor, 0, len(tals))
	for _, f := range tals {
		ta, err := loadTrustAnchor(f)
		if err != nil {
			return err
		}
		tas = append(tas, ta)
	}
	src, err := rpki.OpenTree(trees...)
	if err != nil {
		return err
	}
	fetch, closeFetch, err := taFetcher(*caFile)
	if err != nil {
		return err
	}
	defer closeFetch()
	v, err := rpki.NewValidator(rpki.Config{Source: src, FetchTA: fetch})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := v.Validate(ctx, tas, now)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if *asJSON {
		host, _ := os.Hostname()
		var talFiles []string
		for _, f := range tals {
			abs, err := filepath.Abs(f)
			if err != nil {
				abs = f
			}
			talFiles = append(talFiles, abs)
		}
		// usertime holds the CPU time, user and system together (the
		// bench's portable measure); systemtime stays 0.
		err = res.WriteJSON(stdout, rpki.JSONMeta{BuildMachine: host, BuildTime: time.Now(), Elapsed: elapsed, User: cli.CPUTime(), TALFiles: talFiles})
	} else {
		err = res.WriteCSV(stdout)
	}
	if err != nil {
		return err
	}
	if !*quiet {
		reportValidation(stderr, res, elapsed)
	}
	if res.Stats.TALs == res.Stats.InvalidTALs {
		return errors.New("no trust anchor could be used")
	}
	return nil
}

// loadTrustAnchor reads a TAL and the TA certificate beside it, named like
// the last part of one of its URIs.
func loadTrustAnchor(file string) (rpki.TrustAnchor, error) {
	b, err := readCappedFile(file, rpki.MaxTALSize)
	if err != nil {
		return rpki.TrustAnchor{}, fmt.Errorf("cannot read --tal: %w", err)
	}
	tal, err := rpki.ParseTAL(b)
	if err != nil {
		return rpki.TrustAnchor{}, fmt.Errorf("%s: %w", file, err)
	}
	ta := rpki.TrustAnchor{Name: strings.TrimSuffix(filepath.Base(file), ".tal"), TAL: tal}
	for _, u := range tal.URIs {
		name := path.Base(u)
		if name == "." || name == "/" || name == ".." {
			continue
		}
		p := filepath.Join(filepath.Dir(file), name)
		cert, err := readCappedFile(p, 4<<20)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return rpki.TrustAnchor{}, fmt.Errorf("TA certificate beside %s: %w", file, err)
		}
		ta.Cert, ta.CertFile = cert, p
		break
	}
	return ta, nil
}

func readCappedFile(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", name, max)
	}
	return b, nil
}

// taFetcher returns the fetch of TA certificates over https: rrdp-proxy's
// upstream client with a 30 s deadline and a 1 MiB cap.
func taFetcher(caFile string) (func(ctx context.Context, uri string) ([]byte, error), func(), error) {
	var pem []byte
	if caFile != "" {
		var err error
		if pem, err = os.ReadFile(caFile); err != nil {
			return nil, nil, fmt.Errorf("cannot read --ca-file: %w", err)
		}
	}
	return taFetcherPEM(pem)
}

// taFetcherPEM is taFetcher trusting the CAs of pem beside the system
// roots.
func taFetcherPEM(pem []byte) (func(ctx context.Context, uri string) ([]byte, error), func(), error) {
	cfg := upstream.Config{UserAgent: "rrdp-proxy/" + Version(), NotificationTimeout: 30 * time.Second, MaxNotificationSize: 1 << 20, CAPEM: pem}
	client, err := upstream.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	fetch := func(ctx context.Context, uri string) ([]byte, error) {
		resp, err := client.Fetch(ctx, upstream.Request{URL: uri})
		if err != nil {
			return nil, err
		}
		return resp.ReadAll()
	}
	return fetch, func() { client.Close() }, nil
}

// reportValidation writes a summary, every failing CA and every rejected
// object.
func reportValidation(w io.Writer, res *rpki.Result, elapsed time.Duration) {
	s := res.Stats
	failed := 0
	for _, ca := range res.CAs {
		if ca.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(w, "validated at %s in %v: %d VRPs (%d unique), %d ASPAs, %d CAs (%d failing), %d ROAs, %d manifests (%d failed, %d stale), %d objects rejected\n",
		res.Time.Format(time.RFC3339), elapsed.Round(time.Millisecond), s.VRPs, s.UniqueVRPs, len(res.ASPAs),
		len(res.CAs), failed, s.ROAs, s.Manifests, s.FailedManifests, s.StaleManifests, len(res.Problems))
	for _, ca := range res.CAs {
		if ca.Err != nil {
			fmt.Fprintf(w, "CA %s (%s): %v\n", ca.URI, ca.TA, ca.Err)
		}
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "rejected %s: %v\n", p.URI, p.Err)
	}
}
