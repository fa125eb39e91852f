package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

const configAbout = `Work with rrdp-proxy's TOML configuration file: check one (config check
prints the effective settings, or one line per mistake, FILE:LINE: key:
what is wrong), print a commented example or the reference.

The Redis password is read from the environment variable
` + conf.RedisPasswordEnv + `, never from the file.`

func configCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name: "config", Summary: "check a configuration file or print an example",
		About: configAbout,
		Subs: []*cli.Command{
			{
				Name: "check", Args: "[FILE]", Summary: "check a configuration file and print its effective settings",
				About: `Check the configuration FILE (default ` + defaultConfigPath + `). On success,
print its repositories with the URLs they are served at, then every setting
at its effective value, as TOML, and exit 0. On mistakes, print one line
per mistake, FILE:LINE: key: what is wrong, and exit 1.`,
				MaxArgs: 1,
				Run: func(args []string) error {
					name := defaultConfig
					if len(args) == 1 {
						name = args[0]
					}
					return configCheck(name, stdout, stderr)
				},
			},
			{
				Name: "example", Summary: "print a commented example configuration",
				About: "Print a commented example configuration, showing every key, that config check accepts.",
				Run:   func([]string) error { _, err := stdout.Write(conf.Example()); return err },
			},
			{
				Name: "reference", Summary: "print the configuration reference in Markdown",
				About: "Print the configuration reference in Markdown (the README's section).",
				Run:   func([]string) error { _, err := stdout.Write(conf.Reference()); return err },
			},
		},
	}
}

// configCheck checks the configuration file name.
func configCheck(name string, stdout, stderr io.Writer) error {
	c, err := conf.Load(name)
	if err != nil {
		mistakes := conf.Errors(err)
		if len(mistakes) == 0 {
			return err
		}
		var b strings.Builder
		for _, m := range mistakes {
			b.WriteString(m.Error() + "\n")
		}
		io.WriteString(stderr, b.String())
		return fmt.Errorf("%s: %d %s", name, len(mistakes), plural(len(mistakes), "mistake", "mistakes"))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ok, %d %s\n", name, len(c.Repositories), plural(len(c.Repositories), "repository", "repositories"))
	for i := range c.Repositories {
		r := &c.Repositories[i]
		fmt.Fprintf(&b, "  %s (%s) follows %s\n", r.Name, r.Mode, r.Origin)
		if r.FetchFrom != "" {
			b.WriteString(fetchFromLine(r))
		}
		for _, u := range c.URLs(r) {
			fmt.Fprintf(&b, "    serves %s\n", u)
		}
	}
	if a := c.Server.AdminListen; a != "" {
		pprof := ""
		if c.Server.PProf {
			pprof = " and /debug/pprof/"
		}
		fmt.Fprintf(&b, "operator pages (/metrics, /status, /status.json, /healthz, /readyz%s) on http://%s/ only\n", pprof, a)
	}
	if c.Cache.Redis != nil {
		pw := "not set"
		if c.Cache.Redis.Password != "" {
			pw = "set"
		}
		fmt.Fprintf(&b, "Redis password (%s): %s\n", conf.RedisPasswordEnv, pw)
	}
	b.WriteString("\n# effective settings\n")
	b.Write(c.Effective())
	_, err = io.WriteString(stdout, b.String())
	return err
}

// fetchFromLine explains where the requests of r go with fetch_from.
func fetchFromLine(r *conf.Repository) string {
	origin, err := upstream.Origin(r.Origin)
	u, uerr := url.Parse(r.Origin)
	if err != nil || uerr != nil {
		return "" // conf.Load checked both
	}
	how := "Host header and TLS name " + u.Hostname() + ": the certificate must be valid for it"
	if strings.HasPrefix(strings.ToLower(r.FetchFrom), "http:") {
		how = "Host header " + u.Hostname() + "; plain http, no TLS: a private link"
	}
	return fmt.Sprintf("    fetches %s from %s (%s)\n", origin, r.FetchFrom, how)
}
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
