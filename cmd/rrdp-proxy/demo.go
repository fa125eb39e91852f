package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/tlsca"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const demoAbout = `Run rrdp-proxy offline, with no network and no Redis, and look at it.

The demo generates a small signed RPKI repository (two intermediate CAs,
five members, 50 ROAs) in a temporary directory, serves it from a local
origin on a random port of 127.0.0.1, and runs the proxy in front of it,
composed as "rrdp-proxy serve" composes it, with its cache in memory. It
syncs once through the proxy's notification.bin with the code of
"rrdp-proxy sync" and checks that the objects equal the origin's, prints
the URLs to open and the sizes of the snapshot in both formats, then
publishes a new serial every --every, printing the sizes of each delta,
until Ctrl-C.

The repository is served in mirror mode, at /<origin host>/<origin path>/:
its routes match on the path alone, so they answer whatever host name
the browser uses (localhost or 127.0.0.1). The pages and notifications
are on --listen in plain HTTP; RRDP (RFC 8182) names snapshots and deltas
with https URIs, so the notifications name them on a second, TLS listener
whose throwaway CA the demo prints.`

// demoOptions are the flags of demo.
type demoOptions struct {
	listen   string
	every    time.Duration
	keyCache string
	verbose  bool
}

func demoCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demoOptions
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "the proxy's `address` for HTTP: notifications, /status, /metrics, /readyz (port 0: any free port)")
	fs.DurationVar(&o.every, "every", time.Minute, "time between two serials of the repository")
	fs.StringVar(&o.keyCache, "key-cache", defaultKeyCache(), "`directory` caching the repository's derived keys; empty for none")
	fs.BoolVar(&o.verbose, "v", false, "log what the proxy does")
	return &cli.Command{
		Name: "demo", Args: "[--listen ADDR] [--every DURATION]", Summary: "run a generated repository, the proxy and a sync, offline",
		About: demoAbout, Flags: fs,
		Run: func([]string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo(ctx, o, stdout, stderr)
		},
	}
}

// demo runs the demo until ctx ends; it returns nil then.
func demo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) error {
	if o.every <= 0 {
		return cli.Usagef("--every %v: want a positive duration", o.every)
	}
	dir, err := os.MkdirTemp("", "rrdp-proxy-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	now := time.Now().UTC().Truncate(time.Second)
	// The demo's throwaway CA: RRDP names its snapshots and deltas with
	// https URIs (RFC 8182), so the origin and the proxy's repository
	// listener speak TLS with a certificate for localhost issued by it.
	pki, err := tlsca.New(dir, tlsca.Config{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		return err
	}

	// The origin: a generated repository behind a plain file server.
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the origin: %w", err)
	}
	originHost := oln.Addr().String()
	profile, err := repotest.LookupProfile("small")
	if err != nil {
		oln.Close()
		return err
	}
	originDir := filepath.Join(dir, "origin")
	repo, err := repotest.Create(originDir, repotest.Config{Profile: profile, Seed: 1, BaseURL: "https://" + originHost + "/"}, now, repotest.Options{KeyCache: o.keyCache})
	if err != nil {
		oln.Close()
		return fmt.Errorf("generate the repository: %w", err)
	}
	origin := &http.Server{
		Handler:           http.FileServer(http.Dir(originDir)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	originDone := make(chan struct{})
	go func() {
		defer close(originDone)
		origin.ServeTLS(oln, pki.CertFile, pki.KeyFile)
	}()
	defer func() {
		origin.Close()
		<-originDone
	}()

	// The proxy, configured as serve would be.
	pln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pln.Close()
		return fmt.Errorf("listen for TLS: %w", err)
	}
	plain, secure := pln.Addr().String(), tln.Addr().String()
	poll := min(max(o.every/10, time.Second), 10*time.Second)
	cfgFile := filepath.Join(dir, "rrdp-proxy.toml")
	toml := fmt.Sprintf(`[server]
listen = [%q]
tls_listen = [%q]
tls_cert = %q
tls_key = %q
mirror_base = "https://%s/"

[cache]
memory = "64MiB"

[[repository]]
name = "demo"
origin = "https://%s/rrdp/notification.xml"
mode = "mirror"
ca_file = %q
poll_interval = %q
`, plain, secure, pki.CertFile, pki.KeyFile, secure, originHost, pki.CAFile, poll.String())
	if err := os.WriteFile(cfgFile, []byte(toml), 0o644); err != nil {
		pln.Close()
		tln.Close()
		return err
	}
	cfg, err := conf.Load(cfgFile)
	if err != nil {
		pln.Close()
		tln.Close()
		return err
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	heads := make(chan *follow.Head, 16)
	n, err := newNode(ctx, cfg, nodeOptions{
		Logger:    newLogger(stderr, "text", level),
		Listeners: map[string]net.Listener{plain: pln, secure: tln},
		OnChange: func(_ string, h *follow.Head) {
			select {
			case heads <- h:
			default: // the printer is behind: it reads the next one
			}
		},
	})
	if err != nil {
		pln.Close()
		tln.Close()
		return err
	}
	runCtx, stopNode := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- n.Run(runCtx) }()
	var runErr error
	running := true
	defer func() {
		stopNode()
		if running {
			runErr = <-runDone
		}
	}()

	var h *follow.Head
	select {
	case h = <-heads:
	case <-ctx.Done():
		return nil
	case runErr = <-runDone:
		running = false
		return fmt.Errorf("the proxy stopped: %w", runErr)
	case <-time.After(time.Minute):
		return errors.New("the proxy did not get the repository within a minute")
	}

	path := "/" + originHost + "/rrdp/"
	syncDir := filepath.Join(dir, "sync")
	binURL := "https://" + secure + path + "notification.bin"
	syncLog := io.Discard // its errors come back; its progress is noise here
	if o.verbose {
		syncLog = stderr
	}
	objects, err := demoSync(binURL, pki.CAFile, syncDir, filepath.Join(originDir, filepath.FromSlash(repo.Info().Snapshot.Path)), syncLog)
	if err != nil {
		return err
	}
	in := repo.Info()
	x, b := headSizes(h, rrdpxml.KindSnapshot, h.Serial)
	web := "http://" + plain
	fmt.Fprintf(stdout, "rrdp-proxy demo: offline, no Redis; Ctrl-C stops it\n")
	fmt.Fprintf(stdout, "origin: https://%s/rrdp/notification.xml, a generated signed repository: %d CAs, %d ROAs, %d objects, serial %d\n",
		originHost, in.CAs, in.ROAs, in.Objects, in.Serial)
	fmt.Fprintf(stdout, "proxy: mirror mode, the repository under %s (configuration: %s)\n", path, cfgFile)
	fmt.Fprintf(stdout, "synced once through notification.bin (rrdp-proxy sync): %d objects, equal to the origin's\n", objects)
	fmt.Fprintf(stdout, "snapshot serial %d: XML %d bytes, .bin %d bytes (%s)\n", h.Serial, x, b, saving(x, b))
	fmt.Fprintf(stdout, "\nopen:\n")
	for _, u := range []string{web + path + "notification.xml", web + path + "notification.bin", web + "/status", web + "/metrics", web + "/readyz", web + "/index.json"} {
		fmt.Fprintln(stdout, u)
	}
	fmt.Fprintf(stdout, "\nthe notifications name their files on https://%s/ (demo CA %s); follow the repository with\n", secure, pki.CAFile)
	fmt.Fprintf(stdout, "  rrdp-proxy sync --ca-file %s --out DIR %s\n", pki.CAFile, binURL)
	fmt.Fprintf(stdout, "\na new serial every %s:\n", o.every)

	last := h.Serial
	ticker := time.NewTicker(o.every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "stopped")
			return nil
		case runErr = <-runDone:
			running = false
			return fmt.Errorf("the proxy stopped: %w", runErr)
		case <-ticker.C:
			if err := repo.Advance(time.Now().UTC().Truncate(time.Second), 1); err != nil {
				return fmt.Errorf("advance the repository: %w", err)
			}
		case h := <-heads:
			if h.Serial <= last {
				continue
			}
			for s := last + 1; s <= h.Serial; s++ {
				x, b := headSizes(h, rrdpxml.KindDelta, s)
				fmt.Fprintf(stdout, "serial %d: delta XML %d bytes, .bin %d bytes (%s)\n", s, x, b, saving(x, b))
			}
			last = h.Serial
		}
	}
}

// demoSync follows the notification at url once into dir with the code of
// rrdp-proxy sync, and checks that the tree holds exactly the objects of
// the origin's snapshot file. It returns their number.
func demoSync(url, caFile, dir, snapshot string, stderr io.Writer) (int, error) {
	var out strings.Builder
	if err := syncRepo(syncOptions{once: true, caFile: caFile, out: dir}, url, &out, stderr); err != nil {
		return 0, fmt.Errorf("sync through %s: %w", url, err)
	}
	f, err := os.Open(snapshot)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	d := rrdpxml.NewDecoder(f, rrdpxml.Limits{})
	defer d.Close()
	if _, err := d.Header(); err != nil {
		return 0, fmt.Errorf("origin snapshot %s: %w", snapshot, err)
	}
	n := 0
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("origin snapshot %s: %w", snapshot, err)
		}
		rel, err := objectPath(e.URI)
		if err != nil {
			return 0, err
		}
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return 0, fmt.Errorf("synced tree: %w", err)
		}
		if string(got) != string(e.Content) {
			return 0, fmt.Errorf("synced tree: %s differs from the origin's", e.URI)
		}
		n++
	}
	files := 0
	err = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() && de.Name() != marker {
			files++
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if files != n {
		return 0, fmt.Errorf("synced tree: %d files, the origin's snapshot %d objects", files, n)
	}
	return n, nil
}

// headSizes returns the sizes of the XML and .bin files of kind at serial
// that h serves (not their gzip copies).
func headSizes(h *follow.Head, kind rrdpxml.Kind, serial uint64) (x, b int64) {
	for _, f := range h.Files {
		if f.Kind != kind || f.Serial != serial || f.Gzip {
			continue
		}
		if f.Format == irpki.FormatBin {
			b = f.Size
		} else {
			x = f.Size
		}
	}
	return x, b
}

// saving says how much smaller b is than x.
func saving(x, b int64) string {
	if x == 0 {
		return "no XML"
	}
	return fmt.Sprintf("%.1f%% smaller", 100*(1-float64(b)/float64(x)))
}
