package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

const compactAbout = `Produce the compact format offline: validate TREE (as rrdp-proxy validate
does, from each --tal) and write what validated, re-signed by the proxy's
key (--key, from rrdp-proxy keygen), under OUT: OUT/compact/notification.bin
and the snapshot and delta it names, ready for any static HTTP server.

Per validated CA: its certificate (DER, checked end to end by clients), its
ROAs as iROAs and its ASPAs in compact form (no CMS, no EE certificate), and
an iMFT (the manifest and CRL merged, listing the compact objects by hash)
signed by the key. Objects that failed validation are left out. A relying
party that uses this format trusts the key's holder as its validator.

With --omit-certificates, each CA certificate below the trust anchors is
replaced by a CA record inside the CA's signed iMFT (its resources as
validated, inherit resolved, and its validity): much smaller when CAs hold
few ROAs, but the chain from the trust anchor is then the key holder's word,
not checked end to end by clients.

Key rollover: --rollover-key FILE signs every notification and iMFT with a
second key as well; a client accepts either. Publish with --key OLD
--rollover-key NEW, hand out NEW's key.pub, then --key NEW --rollover-key
OLD, then --key NEW alone (docs/compact.md).

With --repository URL only the CAs that publish in that repository are
written, as serve writes one compact publication per repository: those
whose certificate's rpkiNotify is URL (an RRDP notification URI), or whose
caRepository is under URL (an rsync URI). Give every TREE the chains need
(rrdp-proxy validate takes several too): a tree split over repositories
validates only whole. A client follows the publications of a split tree
together (rrdp-proxy sync --trust FILE --vrps OUT URL...).

When OUT holds a compact publication already, the new state is its next
serial, with a delta per changed CA group from the previous one; otherwise
a new session starts. Files are written beside the old ones, the
notification last; old files stay for clients still fetching them.`

type compactOptions struct {
	tals             talList
	key, rollover    string
	at, base         string
	maxDeltas        int
	omitCertificates bool
	repository       string
}

func compactCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	o := &compactOptions{}
	fs.Var(&o.tals, "tal", "validate from the TAL in `FILE` (repeatable, at least one)")
	fs.StringVar(&o.key, "key", "", "sign with the private key in `FILE` (key.pem of rrdp-proxy keygen; required)")
	fs.StringVar(&o.rollover, "rollover-key", "", "during a key rollover, sign with the private key in `FILE` too")
	fs.BoolVar(&o.omitCertificates, "omit-certificates", false, "replace the CA certificates below the trust anchors by CA records the key vouches for")
	fs.StringVar(&o.at, "time", "", "validate at this `RFC3339` time instead of now")
	fs.StringVar(&o.base, "base", "", "name the snapshot and deltas by absolute URIs under this `URL` of OUT/compact/ (default: relative names)")
	fs.IntVar(&o.maxDeltas, "max-deltas", 100, "list at most `N` deltas")
	fs.StringVar(&o.repository, "repository", "", "write only the CAs that publish in the repository at `URL` (their rpkiNotify, or an rsync URI their caRepository is under)")
	return &cli.Command{
		Name: "compact", Args: "--tal FILE --key FILE [--rollover-key FILE] [--omit-certificates] [--repository URL] [--time RFC3339] TREE [TREE...] OUT", Summary: "validate a tree and write it in the compact format, signed",
		About: compactAbout, Flags: fs, MinArgs: 2, MaxArgs: cli.Many,
		Run: func(args []string) error { return runCompact(o, args[:len(args)-1], args[len(args)-1], stdout, stderr) },
	}
}

func runCompact(o *compactOptions, trees []string, out string, stdout, stderr io.Writer) error {
	if len(o.tals) == 0 {
		return cli.Usagef("at least one --tal is required")
	}
	if o.key == "" {
		return cli.Usagef("--key is required")
	}
	if o.base != "" && !strings.HasSuffix(o.base, "/") {
		return cli.Usagef("--base must end in '/'")
	}
	now := time.Now().UTC().Truncate(time.Second)
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return fmt.Errorf("--time: %w", err)
		}
		now = t.UTC()
	}
	signer, err := readSigner("--key", o.key)
	if err != nil {
		return err
	}
	if o.rollover != "" {
		more, err := readSigner("--rollover-key", o.rollover)
		if err != nil {
			return err
		}
		signer = signer.With(more)
	}
	var tas []rpki.TrustAnchor
	for _, f := range o.tals {
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
	v, err := rpki.NewValidator(rpki.Config{Source: src, KeepPoints: true})
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
	if res.Stats.TALs == res.Stats.InvalidTALs {
		reportValidation(stderr, res, time.Since(start))
		return errors.New("compact: no trust anchor could be used")
	}
	b := compact.Builder{OmitCertificates: o.omitCertificates}
	var some func(*rpki.Point) bool
	if o.repository != "" {
		some = func(p *rpki.Point) bool { return publishesIn(p.CA, o.repository) }
	}
	groups, err := b.BuildSome(ctx, src, res, signer, some)
	if err != nil {
		return err
	}
	if some != nil && len(groups) == 0 {
		// Not an error: every CA of a repository may fail validation.
		fmt.Fprintf(stderr, "rrdp-proxy compact: warning: no CA that validated publishes in --repository %s\n", o.repository)
	}
	opts := compact.Options{Base: o.base, MaxDeltas: o.maxDeltas}
	read := func(name string) ([]byte, error) {
		return readCappedFile(filepath.Join(out, filepath.FromSlash(name)), 1<<30)
	}
	var pub *compact.Publication
	var files []compact.File
	notif, err := read(compact.NotificationName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		pub, files, err = compact.New(sessionFor(signer, now, o.repository), groups, signer, opts)
	case err != nil:
		return fmt.Errorf("compact: %w", err)
	default:
		prev, lerr := compact.Load(notif, read)
		if lerr != nil {
			return fmt.Errorf("compact: the publication in %s: %w", out, lerr)
		}
		pub, files, err = prev.Next(groups, signer, opts)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(out, filepath.FromSlash(f.Name)), f.Data); err != nil {
			return fmt.Errorf("compact: %w", err)
		}
	}
	failed := 0
	for _, ca := range res.CAs {
		if ca.Err != nil {
			failed++
		}
	}
	if len(files) == 0 {
		fmt.Fprintf(stdout, "%s: session %s serial %d, unchanged (%d CAs, %d VRPs)\n", out, pub.Session, pub.Serial, len(groups), len(res.VRPs))
		return nil
	}
	fmt.Fprintf(stdout, "%s: session %s serial %d: %d CAs (%d failing, left out), %d VRPs, %d objects rejected;", out, pub.Session, pub.Serial, len(groups), failed, len(res.VRPs), len(res.Problems))
	for _, f := range files {
		fmt.Fprintf(stdout, " %s %d bytes", filepath.Base(f.Name), len(f.Data))
	}
	fmt.Fprintln(stdout)
	return nil
}

// publishesIn says whether the CA c publishes in the repository at
// repository: an RRDP notification URI its rpkiNotify names, or an rsync
// URI its caRepository is under.
func publishesIn(c *rpki.Cert, repository string) bool {
	if strings.HasPrefix(repository, "rsync://") {
		return strings.HasPrefix(c.CARepository, repository)
	}
	return c.Notify == repository
}

// readSigner reads the private key file named by flag.
func readSigner(flag, file string) (*compact.Signer, error) {
	b, err := readCappedFile(file, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", flag, err)
	}
	s, err := compact.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return s, nil
}

// sessionFor names a new session after the key, the time and the
// repository (--repository, "" for a whole tree), as a UUID (version 8,
// RFC 9562), so that two nodes with the same key starting at the same
// time agree, while the publications of two repositories made with one
// key in the same second do not share a session: a client that follows
// both tells them apart by it (it takes over a state file of version 1
// by its session).
func sessionFor(s *compact.Signer, now time.Time, repository string) string {
	in := fmt.Sprintf("%x %s", s.Public(), now.Format(time.RFC3339Nano))
	if repository != "" {
		in += " " + repository
	}
	h := sha256.Sum256([]byte(in))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// writeAtomic writes name through a temporary file and a rename.
func writeFileAtomic(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Rename(f.Name(), name)
}
