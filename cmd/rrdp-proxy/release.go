package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/conf"
)

const releaseAbout = `Release the serial that the validation gate ([validate] gate = true) holds
back for the repository REPO: the running node publishes it at once, and
relying parties get it at their next fetch. The command asks the node's
admin listener (server.admin_listen of the configuration, or --admin
ADDR) with POST /validate/release?repo=REPO; /status lists what is held
and why. A serial stays held until it is released or the origin publishes
another one, which is judged afresh.

In a fleet ([cache.redis]) any node's admin listener will do: the node
whose gate holds the serial (the repository's lease holder) publishes it
at once; another node queues the release in Redis for the holder, naming
the serial the holder reports held, and answers "queued: ...". The holder
publishes it at its next poll, which the request prompts; a node taking
the lease over honours it too.`

// releaseTimeout bounds the request: the node stores the head and
// validates the new state before it answers.
const releaseRequestTimeout = 5 * time.Minute

func releaseCommand(stdout io.Writer) *cli.Command {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	file := fs.String("config", defaultConfig, "the configuration `file` naming server.admin_listen")
	admin := fs.String("admin", "", "the admin listener's `host:port` (instead of reading the configuration)")
	return &cli.Command{
		Name: "release", Args: "[--config FILE | --admin ADDR] REPO", Summary: "publish a serial the validation gate holds",
		About: releaseAbout, Flags: fs, MinArgs: 1, MaxArgs: 1,
		Run: func(args []string) error {
			addr := *admin
			if addr == "" {
				cfg, err := conf.Load(*file)
				if err != nil {
					return err
				}
				if addr = cfg.Server.AdminListen; addr == "" {
					return fmt.Errorf("%s sets no server.admin_listen: give --admin ADDR", *file)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), releaseRequestTimeout)
			defer cancel()
			msg, err := release(ctx, addr, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, msg)
			return nil
		},
	}
}

// release asks the admin listener at addr to release repo's held serial.
func release(ctx context.Context, addr, repo string) (string, error) {
	u := "http://" + addr + "/validate/release?repo=" + url.QueryEscape(repo)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", fmt.Errorf("release %s: %w", repo, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("release %s: %w", repo, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("release %s: read the answer: %w", repo, err)
	}
	msg := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		if msg == "" {
			msg = resp.Status
		}
		return "", errors.New("release " + repo + ": " + msg)
	}
	return msg, nil
}
