package main

import (
	"io"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/conf"
)

// defaultConfigPath is the configuration file of serve and config check
// when none is given: where deploy/ (the systemd unit, the image) puts it.
const defaultConfigPath = "/etc/rrdp-proxy/rrdp-proxy.toml"

// defaultConfig is defaultConfigPath; tests point it elsewhere.
var defaultConfig = defaultConfigPath

const rootAbout = `rrdp-proxy follows RPKI repositories over RRDP (RFC 8182), verifies every
file it fetches, and serves each repository from memory, disk and an
optional shared Redis tier, both as the legacy XML and in the iRPKI
protobuf layout (.bin), to relying parties, CDNs and other rrdp-proxy
nodes. It runs in front of a publication server under the repository's
own host name (reverse mode) or mirrors many repositories under its own
(mirror mode).

Start with "rrdp-proxy demo" (offline, no configuration), then
"rrdp-proxy config example" and "rrdp-proxy serve".`

// commands returns the tree of rrdp-proxy's commands: the one source of
// --help, "help CMD", the man page and the shell completions. Each
// constructor, in the command's own file, declares the command's flags
// beside the code that reads them.
func commands(stdout, stderr io.Writer) *cli.Command {
	root := &cli.Command{
		Name:    "rrdp-proxy",
		Summary: "RRDP edge for the RPKI: verifying mirror, caching reverse proxy and CDN origin",
		About:   rootAbout,
		Version: Version(),
	}
	root.Subs = []*cli.Command{
		compactCommand(stdout, stderr),
		configCommand(stdout, stderr),
		demoCommand(stdout, stderr),
		genCommand(stdout, stderr),
		inspectCommand(stdout),
		keygenCommand(stdout),
		releaseCommand(stdout),
		serveCommand(stderr),
		syncCommand(stdout, stderr),
		transcodeCommand(stdout, stderr),
		validateCommand(stdout, stderr),
		versionCommand(stdout),
		cli.CompletionCommand(root, stdout),
		cli.ManCommand(root, stdout, cli.Page{Date: buildDate(), Sections: manSections}),
	}
	return root
}

// manSections are the man page's sections beside the commands.
var manSections = []cli.Section{
	{Title: "FILES", Text: `  ` + defaultConfigPath + `
      the configuration of serve and config check when none is given
  /var/lib/rrdp-proxy
      the usual cache.state_dir (the systemd unit's StateDirectory)`},
	{Title: "ENVIRONMENT", Text: `  ` + conf.RedisPasswordEnv + `
      the password of the Redis tier ([cache.redis]); never in the file`},
	{Title: "SIGNALS", Text: `serve reloads its configuration on SIGHUP, and on SIGTERM or SIGINT stops
accepting connections and lets downloads under way finish.`},
	{Title: "EXIT STATUS", Text: `0 on success (and for --help, --version and help), 1 when the command
failed, 2 for a mistake on the command line, 3 from sync --trust when a
compact publication is older than --max-stale (the VRPs are still written).`},
	{Title: "SEE ALSO", Text: `rpki-client(8), fort(8); RFC 8182 (RRDP), RFC 9674 (same-origin URIs).
The README and deploy/README.md of the source tree.`},
}
