package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

const configAbout = `Work with rrdp-proxy's TOML configuration file.

  config check FILE   check FILE; print its repositories, the URLs they are
                      served at and every setting with its effective value
                      (defaults included). On a mistake, print one line per
                      mistake, FILE:LINE: key: what is wrong, and exit 1.
  config example      print a commented example configuration, showing
                      every key, that config check accepts.
  config reference    print the configuration reference in Markdown (the
                      README's section).

The Redis password is read from the environment variable
` + conf.RedisPasswordEnv + `, never from the file.`

func runConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config", "check FILE | example | reference", configAbout, stderr)
	if err := parse(fs, args, -1); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "rrdp-proxy config: want check, example or reference")
		fs.Usage()
		return errUsage
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch sub {
	case "check":
		return runConfigCheck(rest, stdout, stderr)
	case "example":
		return runConfigPrint("example", "Print a commented example configuration that config check accepts.", conf.Example, rest, stdout, stderr)
	case "reference":
		return runConfigPrint("reference", "Print the configuration reference in Markdown.", conf.Reference, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "rrdp-proxy config: unknown subcommand %q\n", sub)
	fs.Usage()
	return errUsage
}

func runConfigCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config check", "FILE", `Check the configuration FILE. On success, print its repositories with the
URLs they are served at, then every setting at its effective value, as TOML,
and exit 0. On mistakes, print one line per mistake,
FILE:LINE: key: what is wrong, and exit 1.`, stderr)
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	name := fs.Arg(0)
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

func runConfigPrint(name, about string, out func() []byte, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("config "+name, "", about, stderr)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	_, err := stdout.Write(out())
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
