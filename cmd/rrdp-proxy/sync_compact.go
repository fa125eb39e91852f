package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const syncCompactAbout = `

With --trust FILE (a trust file of rrdp-proxy keygen, several keys during a
rollover) each NOTIFICATION_URL is a compact notification (compact/
notification.bin, one per repository, of rrdp-proxy serve or compact) and
sync writes VRPs instead of a tree: --vrps FILE in rpki-client's CSV (ASN,IP
Prefix,Max Length,Trust Anchor,Expires), or its JSON with --json. It
verifies the notification's signature (one by a key of the trust file
suffices; one by such a key that does not verify fails), the hashes of the
snapshot and deltas, every iMFT's signature and validity, the CA
certificates from each trust anchor down (or, in a publication made with
--omit-certificates, the CA records the proxy signed: resources within the
issuer's, validity), and every iROA and ASPA against its CA; serials may not
go back. --require-certificates refuses CA records. With --tal the trust
anchors must be those of the TALs; without, the proxy vouches for them too.

Several NOTIFICATION_URLs are followed together, as a relying party follows
RRDP repositories: a tree crosses repositories (a delegated CA publishes
under its own publication server, its certificate in its issuer's), so the
chains are verified across the union of the publications, and the VRPs are
the union's. List every publication the trees need: sync does not discover
them. A CA whose issuer is in no publication listed yields nothing, with a
warning naming the CA and the issuer; that is not a failure.

A publication that fails (forged signature, truncated file, older serial)
keeps its previous verified state, the error names its URL, the file, the
CA and the entry, and the others still advance; the VRPs are then written
from the new states and the states kept, and sync exits 1. When every
publication fails, the previous VRPs stay. The verified states are kept,
each apart, in one state file in --state (FILE.state by default), so that a
later run applies each publication's deltas; a state file of an older
version (one publication) is taken over. --fetch-from is not supported
with --trust.

--max-stale DURATION bounds how old a publication may be: its age is the
time since its newest iMFT was issued (the most recent manifest of its
CAs, as the proxy signed it; the notification has no time of its own).
Past it, the run still writes the VRPs but exits 3, naming the
publication, its serial and the time of that iMFT, also when the
publication's server is down or keeps serving an old notification. Exit
status 1 is a publication that failed in this run; 3 wins over 1 when both
hold. Without --once the error is logged at each poll. Choose DURATION
above the longest interval at which the repository's CAs reissue their
manifests (a day, say: --max-stale 24h; durations have no "d"): a quiet
repository ages too. 0, the default, checks nothing: each iMFT's
nextUpdate alone then bounds a publication, and a CA past it is left out
with a warning, exit 0.`

// compactSyncOptions are sync's flags for the compact format.
type compactSyncOptions struct {
	trust, vrps string
	asJSON      bool
	at          string
	tals        talList
	// requireCerts refuses lean publications (CA records).
	requireCerts bool
	// maxStale, if not 0, is the age past which a publication is stale:
	// the run then fails with exitStale (--max-stale).
	maxStale time.Duration
}

// exitStale is sync's exit status when a publication is older than
// --max-stale, whatever else failed: the condition an operator set a bound
// for, and the one that lasts (a failed fetch alone exits 1).
const exitStale = 3

func addCompactSyncFlags(fs *flag.FlagSet, o *compactSyncOptions) {
	fs.StringVar(&o.trust, "trust", "", "follow a compact notification signed by a key of this trust `file` and write VRPs")
	fs.StringVar(&o.vrps, "vrps", "", "with --trust, write the VRPs to `FILE` (rpki-client's CSV)")
	fs.BoolVar(&o.asJSON, "json", false, "with --trust, write rpki-client's JSON (VRPs and ASPAs) instead of CSV")
	fs.StringVar(&o.at, "time", "", "with --trust, verify at this `RFC3339` time instead of now")
	fs.Var(&o.tals, "tal", "with --trust, accept only the trust anchors of the TALs in `FILE` (repeatable; default: any the proxy publishes)")
	fs.BoolVar(&o.requireCerts, "require-certificates", false, "with --trust, refuse CA records in place of CA certificates (rrdp-proxy compact --omit-certificates)")
	fs.DurationVar(&o.maxStale, "max-stale", 0, "with --trust, exit 3 when a publication's newest iMFT was issued more than `DURATION` ago (0: never)")
}

// syncCompact follows the compact notifications at urls together: one
// state per publication in one state file, the VRPs over their union.
func syncCompact(o syncOptions, urls []string, stdout, stderr io.Writer) error {
	c := o.compact
	if c.vrps == "" {
		return cli.Usagef("--trust needs --vrps FILE")
	}
	if o.out != "" {
		return cli.Usagef("--trust writes VRPs (--vrps), not a tree (--out)")
	}
	if len(urls) == 0 {
		return cli.Usagef("want at least 1 argument, got 0")
	}
	if o.fetchFrom != "" {
		return cli.Usagef("--fetch-from is not supported with --trust")
	}
	if c.maxStale < 0 {
		return cli.Usagef("--max-stale %v: want a positive duration, or 0 for none", c.maxStale)
	}
	bases := make([]*url.URL, len(urls))
	for i, u := range urls {
		if slices.Contains(urls[:i], u) {
			return cli.Usagef("NOTIFICATION_URL %s given twice", u)
		}
		b, err := url.Parse(u)
		if err != nil {
			return cli.Usagef("NOTIFICATION_URL: %v", err)
		}
		bases[i] = b
	}
	trustPEM, err := readCappedFile(c.trust, 64<<10)
	if err != nil {
		return fmt.Errorf("cannot read --trust: %w", err)
	}
	keys, err := compact.ParseKeys(trustPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", c.trust, err)
	}
	trust := compact.Trust{Keys: keys, RequireCertificates: c.requireCerts}
	for _, f := range c.tals {
		b, err := readCappedFile(f, rpki.MaxTALSize)
		if err != nil {
			return fmt.Errorf("cannot read --tal: %w", err)
		}
		tal, err := rpki.ParseTAL(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		trust.TAs = append(trust.TAs, tal.SPKI)
	}
	var at time.Time
	if c.at != "" {
		if at, err = time.Parse(time.RFC3339, c.at); err != nil {
			return fmt.Errorf("--time: %w", err)
		}
	}
	ucfg := upstream.Config{UserAgent: "rrdp-proxy/" + Version()}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return fmt.Errorf("cannot read --ca-file: %w", err)
		}
		ucfg.CAPEM = pem
	}
	client, err := upstream.New(ucfg)
	if err != nil {
		return err
	}
	defer client.Close()
	if o.stateDir == "" {
		o.stateDir = filepath.Clean(c.vrps) + ".state"
	}
	stateFile := filepath.Join(o.stateDir, "compact-state.bin")
	st, err := loadCompactStates(stateFile, urls)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	once := func() error {
		fetch := func(base *url.URL, kind rrdpxml.Kind) compact.Fetcher {
			return func(ref string) ([]byte, error) {
				r, err := url.Parse(ref)
				if err != nil {
					return nil, err
				}
				resp, err := client.Fetch(ctx, upstream.Request{URL: base.ResolveReference(r).String(), Kind: kind})
				if err != nil {
					return nil, err
				}
				return resp.ReadAll()
			}
		}
		start := time.Now()
		feeds := make([]compact.Feed, len(urls))
		for i, u := range urls {
			// Deltas and snapshot share the snapshot's cap: a compact
			// delta is never larger than what it changes.
			feeds[i] = compact.Feed{Name: u, Prev: st.states[i], Fetch: fetch(bases[i], rrdpxml.KindSnapshot)}
			feeds[i].Notification, feeds[i].Err = fetch(bases[i], rrdpxml.KindNotification)(u)
		}
		st.adoptLegacy(feeds, keys)
		now := at
		if now.IsZero() {
			now = time.Now().UTC()
		}
		out := compact.SyncAll(feeds, trust, now)
		for _, s := range out.Skips {
			log.Warn("compact: CA left out", "publication", s.Feed, "ca", s.CA, "issuer", s.Issuer, "why", s.Reason, "below", s.Below)
		}
		fresh := false
		changed := st.legacy != nil
		next := make([]*compact.State, len(urls))
		for i, r := range out.Feeds {
			next[i] = r.State
			fresh = fresh || r.Err == nil
			changed = changed || r.State != st.states[i]
		}
		failed := out.Failed()
		stale := staleness(urls, out.Feeds, now, c.maxStale)
		if !fresh {
			// Nothing verified anew (every publication failed): the VRPs
			// written last stay, as they are what the states kept gave.
			return withStale(stale, fmt.Errorf("%w (the previous VRPs in %s stay)", failed, c.vrps))
		}
		res := out.Result
		var buf bytes.Buffer
		if c.asJSON {
			host, _ := os.Hostname()
			err = res.WriteJSON(&buf, rpki.JSONMeta{BuildMachine: host, BuildTime: time.Now(), Elapsed: time.Since(start), User: cli.CPUTime()})
		} else {
			err = res.WriteCSV(&buf)
		}
		if err != nil {
			return err
		}
		if changed {
			if err := writeFileAtomic(stateFile, compact.MarshalStates(urls, next)); err != nil {
				return fmt.Errorf("cannot write the state: %w", err)
			}
		}
		if err := writeFileAtomic(c.vrps, buf.Bytes()); err != nil {
			return fmt.Errorf("cannot write --vrps: %w", err)
		}
		took := time.Since(start).Round(time.Millisecond)
		if len(urls) == 1 {
			if r := out.Feeds[0]; r.State != nil {
				fmt.Fprintf(stdout, "%s: session %s serial %d (%s): %d VRPs, %d ASPAs from %d CAs in %v\n", c.vrps, r.State.Session, r.State.Serial,
					syncHow(st.states[0], r), len(res.VRPs), len(res.ASPAs), res.Stats.Certificates, took)
			}
		} else {
			for i, r := range out.Feeds {
				switch {
				case r.State == nil:
					fmt.Fprintf(stdout, "%s: no state (%s)\n", urls[i], syncHow(st.states[i], r))
				default:
					fmt.Fprintf(stdout, "%s: session %s serial %d (%s)\n", urls[i], r.State.Session, r.State.Serial, syncHow(st.states[i], r))
				}
			}
			fmt.Fprintf(stdout, "%s: %d VRPs, %d ASPAs from %d CAs of %d publications (%d CAs left out) in %v\n", c.vrps,
				len(res.VRPs), len(res.ASPAs), res.Stats.Certificates, len(urls), len(out.Skips), took)
		}
		st.states, st.legacy = next, nil
		if failed != nil {
			return withStale(stale, fmt.Errorf("%w (each publication that failed keeps its previous state; the VRPs in %s are from the states kept)", failed, c.vrps))
		}
		return withStale(stale, nil)
	}
	err = once()
	if o.once {
		return err
	}
	for {
		if err != nil {
			log.Error("compact sync failed", "err", err)
		}
		// Jitter of up to a tenth of the interval.
		wait := o.interval + time.Duration(rand.Int64N(int64(o.interval)/10+1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		err = once()
	}
}

// staleness returns an error naming each publication whose state (new or
// kept) is older than maxStale at now, by State.Issued (nil: none, or
// maxStale 0). A publication without a state is not stale: it failed, and
// says so itself. The age is the proxy's signed word (its CAs' newest
// manifest), not the time of the client's last fetch: a server that stays
// up but stops moving, and a cache that replays an old notification, are
// caught as well as a server that is down.
func staleness(urls []string, feeds []compact.FeedResult, now time.Time, maxStale time.Duration) error {
	if maxStale <= 0 {
		return nil
	}
	var errs []error
	for i, r := range feeds {
		if r.State == nil {
			continue
		}
		issued := r.State.Issued()
		if issued.IsZero() {
			continue
		}
		if age := now.Sub(issued); age > maxStale {
			errs = append(errs, fmt.Errorf("%s: stale: serial %d, its newest iMFT issued %s, %v before %s (--max-stale %v)", urls[i],
				r.State.Serial, issued.Format(time.RFC3339), age.Round(time.Second), now.Format(time.RFC3339), maxStale))
		}
	}
	return errors.Join(errs...)
}

// withStale returns err, or, when stale is set, both as a failure of
// status exitStale.
func withStale(stale, err error) error {
	if stale == nil {
		return err
	}
	return &cli.StatusError{Code: exitStale, Err: errors.Join(stale, err)}
}

// syncHow says how a publication got from prev to r.State.
func syncHow(prev *compact.State, r compact.FeedResult) string {
	next := r.State
	switch {
	case r.Err != nil && next == nil:
		return "failed"
	case r.Err != nil:
		return "failed, its state kept"
	case prev == nil || prev.Session != next.Session:
		return "from the snapshot"
	case prev.Serial != next.Serial:
		return fmt.Sprintf("%d deltas", next.Serial-prev.Serial)
	}
	return "unchanged"
}

// compactStates is the verified state of each publication followed, in
// the order of the URLs, as kept in the state file.
type compactStates struct {
	states []*compact.State
	// legacy is the state of a state file of version 1 (one publication,
	// without its URL), until adoptLegacy gives it to its publication.
	legacy *compact.State
}

// loadCompactStates reads the state file, if any, for the publications
// at urls. A publication no longer followed loses its state at the next
// write: the file mirrors the command line.
func loadCompactStates(file string, urls []string) (*compactStates, error) {
	st := &compactStates{states: make([]*compact.State, len(urls))}
	b, err := readCappedFile(file, 4<<30)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the state: %w", err)
	}
	byURL, legacy, err := compact.UnmarshalStates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i, u := range urls {
		st.states[i] = byURL[u]
	}
	st.legacy = legacy
	return st, nil
}

// adoptLegacy gives a state of version 1 to the feed whose notification
// is of its session (the state file did not name its URL), or, when one
// publication is followed, to it whatever its session (its groups still
// serve the iMFT replay check, as they did). A legacy state that no
// publication takes is dropped at the next write: its publication, if
// followed, starts again from its snapshot.
func (st *compactStates) adoptLegacy(feeds []compact.Feed, keys compact.Keys) {
	if st.legacy == nil {
		return
	}
	for i := range feeds {
		if feeds[i].Prev != nil || feeds[i].Err != nil {
			continue
		}
		if nt, err := compact.ParseNotification(feeds[i].Notification, keys); err == nil && nt.Session == st.legacy.Session {
			feeds[i].Prev, st.states[i] = st.legacy, st.legacy
			return
		}
	}
	if len(feeds) == 1 && feeds[0].Prev == nil {
		feeds[0].Prev, st.states[0] = st.legacy, st.legacy
	}
}
