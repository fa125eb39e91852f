package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

const syncAbout = `Follow one RRDP repository (RFC 8182) and keep a local copy of it: every
object of the current state as a file DIR/<host>/<path>, named after its
rsync URI. NOTIFICATION_URL is an RRDP notification.xml, or the
notification.bin of another rrdp-proxy; both give the same tree.

Everything fetched is verified as rrdp-proxy's server does before it serves
it (hashes, delta chains, replaced-object hashes, same-origin URIs). Each
new state is written as a new tree beside DIR and swapped in with two
renames, so DIR always holds one whole verified state; DIR/.rrdp-proxy-sync
names its session and serial. An existing DIR is replaced only if it holds
that file or is empty.

The verified state is also kept in a state directory (--state, DIR.state
by default): the files as served by rrdp-proxy and the last head, written
atomically. A later run continues from it and fetches only the deltas
published since, unless the origin reset its session.

--fetch-from URL sends every request for the notification's scheme, host
and port to another address (scheme://host[:port], no path), as the
configuration key fetch_from does for serve: the Host header and, over
https, the TLS server name and the name the certificate must be valid for
stay the notification's host; plain http is accepted (a private link).
The URIs and the same-origin checks stay the public ones.

With --once it syncs once and exits; otherwise it polls every --interval
(with jitter, backing off after errors), applying deltas, until
interrupted.`

// syncOptions are the flags of sync.
type syncOptions struct {
	out, caFile, stateDir string
	fetchFrom             string
	once                  bool
	interval              time.Duration
	compact               compactSyncOptions
}

func syncCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	o := syncOptions{}
	fs.StringVar(&o.out, "out", "", "write the repository's objects under `DIR` (required)")
	fs.StringVar(&o.caFile, "ca-file", "", "trust the CA certificates in this PEM `file` beside the system roots")
	fs.StringVar(&o.fetchFrom, "fetch-from", "", "send the requests for the notification's scheme, host and port to `URL` (scheme://host[:port]), keeping its Host and TLS name")
	fs.BoolVar(&o.once, "once", false, "sync once and exit")
	fs.DurationVar(&o.interval, "interval", time.Minute, "time between polls")
	fs.StringVar(&o.stateDir, "state", "", "keep the verified state in `DIR` across runs (default: the --out directory + \".state\")")
	addCompactSyncFlags(fs, &o.compact)
	return &cli.Command{
		Name: "sync", Args: "[flags] --out DIR NOTIFICATION_URL | --trust FILE --vrps FILE NOTIFICATION_URL...", Summary: "keep a local copy of a repository",
		About: syncAbout + syncCompactAbout, Flags: fs, MaxArgs: cli.Many,
		Run: func(args []string) error {
			if o.compact.trust != "" {
				return syncCompact(o, args, stdout, stderr)
			}
			if len(args) != 1 {
				hint := ""
				if len(args) > 1 {
					hint = " (several NOTIFICATION_URLs only with --trust)"
				}
				return cli.Usagef("want 1 argument, got %d%s", len(args), hint)
			}
			return syncRepo(o, args[0], stdout, stderr)
		},
	}
}

// syncRepo follows the repository whose notification is at url.
func syncRepo(o syncOptions, url string, stdout, stderr io.Writer) error {
	if o.out == "" {
		return cli.Usagef("--out is required")
	}
	ucfg := upstream.Config{UserAgent: "rrdp-proxy/" + Version()}
	if o.fetchFrom != "" {
		if err := upstream.CheckFetchFrom(o.fetchFrom); err != nil {
			return cli.Usagef("--fetch-from: %v", err)
		}
		ucfg.Origin, ucfg.FetchFrom = url, o.fetchFrom
	}
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

	log := slog.New(slog.NewTextHandler(stderr, nil))
	if o.stateDir == "" {
		o.stateDir = filepath.Clean(o.out) + ".state"
	}
	if err := checkReplaceable(o.out); err != nil {
		return err
	}
	store, err := diskstore.Open(diskstore.Config{Dir: o.stateDir, Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	heads, err := store.Heads(ctx)
	if err != nil {
		return fmt.Errorf("cannot read the state in %s: %w", o.stateDir, err)
	}
	var werr error
	var f *follow.Follower
	write := func(h *follow.Head) {
		werr = writeTree(o.out, f, h)
		if werr != nil {
			log.Error("cannot write the tree", "dir", o.out, "err", werr)
			return
		}
		fmt.Fprintf(stdout, "%s: session %s serial %d\n", o.out, h.Session, h.Serial)
		if _, err := store.GC(ctx); err != nil {
			log.Warn("cannot clean the state directory", "dir", o.stateDir, "err", err)
		}
	}
	f, err = follow.New(follow.Config{
		URL: url, Client: client, Store: store, Interval: o.interval, Logger: log,
		Start: heads[url], Blobs: store.GetBlob, OnChange: write,
	})
	if err != nil {
		return err
	}
	// The first sync also brings a tree that lags the stored state (a run
	// stopped between the two) up to date.
	changed, err := f.Sync(ctx)
	if h := f.Head(); err == nil && !changed && h != nil {
		if treeIsAt(o.out, h) {
			fmt.Fprintf(stdout, "%s: session %s serial %d, unchanged\n", o.out, h.Session, h.Serial)
		} else {
			write(h)
		}
	}
	if o.once || err != nil && ctx.Err() != nil {
		if err != nil {
			return err
		}
		return werr
	}
	if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// treeState is what the marker of a tree says for head h.
func treeState(h *follow.Head) string {
	return fmt.Sprintf("session %s\nserial %d\n", h.Session, h.Serial)
}

// treeIsAt reports whether the tree in dir holds the state of h.
func treeIsAt(dir string, h *follow.Head) bool {
	b, err := os.ReadFile(filepath.Join(dir, marker))
	return err == nil && string(b) == treeState(h)
}

// marker is the file that marks a directory written by sync.
const marker = ".rrdp-proxy-sync"

// writeTree writes the objects of f's current state into a new directory
// beside dir and swaps it in.
func writeTree(dir string, f *follow.Follower, h *follow.Head) error {
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".new-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // nothing left after a successful swap
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	err = f.WalkObjects(func(uri string, content []byte) error {
		rel, err := objectPath(uri)
		if err != nil {
			return err
		}
		p := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, content, 0o644)
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), []byte(treeState(h)), 0o644); err != nil {
		return err
	}
	old := ""
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// checkReplaceable refuses to replace a directory sync did not write.
func checkReplaceable(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(ents) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		return fmt.Errorf("%s is not empty and has no %s: not replacing it", dir, marker)
	}
	return nil
}

// objectPath maps rsync://host/path to host/path, refusing anything that
// would leave the tree (the decoders reject such URIs already).
func objectPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "rsync" || u.Host == "" {
		return "", fmt.Errorf("object URI %q: not an rsync URI", uri)
	}
	rel := u.Host + u.Path
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || seg == marker {
			return "", fmt.Errorf("object URI %q: bad path", uri)
		}
	}
	return filepath.FromSlash(rel), nil
}
