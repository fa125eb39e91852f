package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/conf"
)

const serveAbout = `Run the proxy from a configuration file (--config, by default
` + defaultConfigPath + `; see rrdp-proxy config example):
follow every repository it names, keep their verified states in the cache
(memory; the state directory with cache.state_dir, which makes a restart
serve at once even while an origin is down; a fleet's Redis with
[cache.redis]) and serve them over HTTP and HTTPS in both formats, XML and
.bin, with /metrics, /healthz, /readyz, /status and /status.json.

SIGHUP reloads the configuration: repositories are added, removed and
changed without a restart, the TLS certificate and key are read again
(connections open keep the old one), the access log file is reopened, and
the log level follows. Listen addresses, the server's timeouts and limits,
the admin listener, the access log settings, the [cache] table and, with
Redis, the repositories take effect at the next start; a reload that
changes them says so in the log, at every reload until a restart. A
configuration that does not load is logged and the running one kept.
Under systemd (Type=notify) serve reports READY=1, RELOADING=1 and
STOPPING=1 and pings the watchdog (WatchdogSec).

SIGTERM or SIGINT shuts down gracefully: no new connections, downloads
under way finish for up to 30s.`

func serveCommand(stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	file := fs.String("config", defaultConfig, "the configuration `file`")
	return &cli.Command{
		Name: "serve", Args: "[--config FILE]", Summary: "run the proxy from a configuration file",
		About: serveAbout, Flags: fs,
		Run: func([]string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			notify, err := newNotifier(os.Getenv)
			if err != nil {
				return err
			}
			defer notify.Close()
			return serve(ctx, serveOptions{Config: *file, Reload: hup, Log: stderr, Notify: notify})
		},
	}
}

// serveOptions is what serve takes beside a context.
type serveOptions struct {
	// Config is the configuration file.
	Config string
	// Reload receives a value (SIGHUP) for each reload of Config.
	Reload <-chan os.Signal
	// Log receives the log.
	Log io.Writer
	// Listeners are listeners already open, by the address of the
	// configuration they stand for (tests).
	Listeners map[string]net.Listener
	// Notify, if set, tells systemd (Type=notify) when the node is
	// ready, reloading and stopping, and pings its watchdog.
	Notify *notifier
}

// serve runs a node from the configuration file until ctx ends, reloading
// it on each value of opts.Reload.
func serve(ctx context.Context, opts serveOptions) error {
	cfg, err := conf.Load(opts.Config)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Server.Level())
	log := newLogger(opts.Log, cfg.Server.LogFormat, level)
	if err := setMemoryLimit(&cfg.Server, log); err != nil {
		return err
	}
	pacer := &gcPacer{log: log}
	if err := pacer.apply(&cfg.Server); err != nil {
		return err
	}
	n, err := newNode(ctx, cfg, nodeOptions{Logger: log, Level: level, Listeners: opts.Listeners, Stderr: opts.Log, Notify: opts.Notify})
	if err != nil {
		return err
	}
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("rrdp-proxy starting", "version", Version(), "config", opts.Config, "listen", addrs,
		"admin", cfg.Server.AdminListen, "repositories", len(cfg.Repositories), "node", cfg.Server.Node)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	pctx, stopPacer := context.WithCancel(ctx)
	paced := make(chan struct{})
	go func() { pacer.Run(pctx); close(paced) }()
	defer func() { stopPacer(); <-paced }()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-opts.Reload:
			opts.Notify.reloading()
			cfg, err := conf.Load(opts.Config)
			if err == nil {
				err = n.Reload(cfg)
			}
			if err == nil {
				err = setMemoryLimit(&cfg.Server, log)
			}
			if err == nil {
				err = pacer.apply(&cfg.Server)
			}
			opts.Notify.ready()
			if err != nil {
				log.Error("reload failed: the running configuration stays", "config", opts.Config, "err", err)
				continue
			}
			log.Info("configuration reloaded", "config", opts.Config, "repositories", len(cfg.Repositories))
		}
	}
}

// newLogger returns the process's log: text or JSON lines on w. Durations
// are written as strings ("1m30s") in both, where slog's JSON handler would
// write nanoseconds.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
