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
rollover) NOTIFICATION_URL is a compact notification (compact/notification.bin
of rrdp-proxy compact) and sync writes VRPs instead of a tree: --vrps FILE in
rpki-client's CSV (ASN,IP Prefix,Max Length,Trust Anchor,Expires), or its
JSON with --json. It verifies the notification's signature (one by a key
of the trust file suffices; one by such a key that does not verify fails),
the hashes of the snapshot and deltas, every iMFT's signature and validity,
the CA certificates from each trust anchor down (or, in a publication made
with --omit-certificates, the CA records the proxy signed: resources within
the issuer's, validity), and every iROA and ASPA against its CA; serials may
not go back. --require-certificates refuses CA records. With --tal the trust
anchors must be those of the TALs; without, the proxy vouches for them too.
Anything that fails is reported with the file, the CA and the entry, and the
previous VRPs stay. The verified state is kept in --state (FILE.state by
default), so a later run applies deltas.`

// compactSyncOptions are sync's flags for the compact format.
type compactSyncOptions struct {
	trust, vrps string
	asJSON      bool
	at          string
	tals        talList
	// requireCerts refuses lean publications (CA records).
	requireCerts bool
}

func addCompactSyncFlags(fs *flag.FlagSet, o *compactSyncOptions) {
	fs.StringVar(&o.trust, "trust", "", "follow a compact notification signed by a key of this trust `file` and write VRPs")
	fs.StringVar(&o.vrps, "vrps", "", "with --trust, write the VRPs to `FILE` (rpki-client's CSV)")
	fs.BoolVar(&o.asJSON, "json", false, "with --trust, write rpki-client's JSON (VRPs and ASPAs) instead of CSV")
	fs.StringVar(&o.at, "time", "", "with --trust, verify at this `RFC3339` time instead of now")
	fs.Var(&o.tals, "tal", "with --trust, accept only the trust anchors of the TALs in `FILE` (repeatable; default: any the proxy publishes)")
	fs.BoolVar(&o.requireCerts, "require-certificates", false, "with --trust, refuse CA records in place of CA certificates (rrdp-proxy compact --omit-certificates)")
}

// syncCompact follows the compact notification at u.
func syncCompact(o syncOptions, u string, stdout, stderr io.Writer) error {
	c := o.compact
	if c.vrps == "" {
		return cli.Usagef("--trust needs --vrps FILE")
	}
	if o.out != "" {
		return cli.Usagef("--trust writes VRPs (--vrps), not a tree (--out)")
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
	base, err := url.Parse(u)
	if err != nil {
		return cli.Usagef("NOTIFICATION_URL: %v", err)
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
	var st *compact.State
	if b, err := readCappedFile(stateFile, 4<<30); err == nil {
		if st, err = compact.UnmarshalState(b); err != nil {
			return fmt.Errorf("%s: %w", stateFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read the state: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	once := func() error {
		fetch := func(kind rrdpxml.Kind) compact.Fetcher {
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
		notif, err := fetch(rrdpxml.KindNotification)(u)
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		now := at
		if now.IsZero() {
			now = time.Now().UTC()
		}
		// Deltas and snapshot share the snapshot's cap: a compact delta
		// is never larger than what it changes.
		next, res, err := compact.Sync(st, notif, fetch(rrdpxml.KindSnapshot), trust, now)
		if err != nil {
			return fmt.Errorf("%s: %w (the previous VRPs in %s stay)", u, err, c.vrps)
		}
		var out bytes.Buffer
		if c.asJSON {
			host, _ := os.Hostname()
			err = res.WriteJSON(&out, rpki.JSONMeta{BuildMachine: host, BuildTime: time.Now(), Elapsed: time.Since(start), User: cli.CPUTime()})
		} else {
			err = res.WriteCSV(&out)
		}
		if err != nil {
			return err
		}
		if next != st {
			if err := writeFileAtomic(stateFile, next.Marshal()); err != nil {
				return fmt.Errorf("cannot write the state: %w", err)
			}
		}
		if err := writeFileAtomic(c.vrps, out.Bytes()); err != nil {
			return fmt.Errorf("cannot write --vrps: %w", err)
		}
		how := "unchanged"
		switch {
		case st == nil || st.Session != next.Session:
			how = "from the snapshot"
		case st.Serial != next.Serial:
			how = fmt.Sprintf("%d deltas", next.Serial-st.Serial)
		}
		fmt.Fprintf(stdout, "%s: session %s serial %d (%s): %d VRPs, %d ASPAs from %d CAs in %v\n", c.vrps, next.Session, next.Serial, how,
			len(res.VRPs), len(res.ASPAs), res.Stats.Certificates, time.Since(start).Round(time.Millisecond))
		st = next
		return nil
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
