package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

const genAbout = `Generate a synthetic RPKI repository with real signatures, published over
RRDP, in DIR, or evolve one.

Create (no --advance, no --reset-session): DIR gets ta.tal, ta.cer,
expected-vrps.csv (the VRPs relying parties must output) and the RRDP files
under DIR/rrdp/ (notification.xml; snapshot and deltas under
rrdp/SESSION/SERIAL/RANDOM/). Every https URI inside is --base-url followed
by the file's path relative to DIR, so serving DIR at --base-url is enough.

--split URL splits the tree over two RRDP repositories: the member CAs with
an odd ID are delegated, as when a member runs its own publication point at
another host. Their certificates stay in their parents' publication points,
in the first repository; their manifests, CRLs, ROAs and ASPAs are in a
second repository with its own notification, session and serials, in
DIR/delegated/ (serve it at URL: DIR/delegated/rrdp/notification.xml), its
rsync URIs rsync://HOST/delegated/... for URL's HOST. expected-vrps.csv
holds the VRPs of the whole tree, which only both repositories give.

--advance N evolves the repository in DIR by N serials, one delta each:
manifests and CRLs reissued, ROAs added, replaced and withdrawn, a CA added
and one removed, plus whatever the time since the last run requires
(manifests, CRLs and certificates close to expiry are reissued).
--reset-session starts a new session (new session id, serial 1, snapshot
only); with --advance N as well, the N deltas follow in the new session
(serials 2 to N+1). Both keep the profile, seed and base URL of DIR.

The output depends only on the profile, the seed, the sequence of operations
and the times (--now); derived keys are cached (--key-cache) so that
regenerating a big profile costs signatures only.

Profiles: small (default: 2 intermediate CAs, 5 member CAs, 50 ROAs, 2 ASPAs),
paper-1ca (1 CA, 10,000 ROAs), paper-10kca (10,000 CAs, one ROA each),
large (30,000 CAs, 300,000 ROAs).`

func genCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", "", "repository `directory`")
	baseURL := fs.String("base-url", "", "https `URL` at which DIR will be served (required to create)")
	split := fs.String("split", "", "split the tree: delegated CAs publish in a second repository, DIR/delegated, served at this https `URL`")
	profile := fs.String("profile", "small", "`name` of the profile: small, paper-1ca, paper-10kca, large")
	seed := fs.Int64("seed", 1, "seed of every key, choice and URI")
	advance := fs.Int("advance", 0, "evolve the repository in DIR by `N` serials")
	reset := fs.Bool("reset-session", false, "start a new session (before the --advance deltas, if any)")
	nowFlag := fs.String("now", "", "the current time, RFC 3339 (default: the clock); validity starts before it")
	keyCache := fs.String("key-cache", defaultKeyCache(), "`directory` caching derived keys; empty for none")
	workers := fs.Int("workers", 0, "signing goroutines (default: the number of CPUs)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	return &cli.Command{
		Name: "gen", Args: "--out DIR [--base-url URL [--split URL] --profile NAME --seed N | --advance N --reset-session]",
		Summary: "generate a synthetic signed RPKI repository", About: genAbout, Flags: fs,
		Run: func([]string) error {
			if *out == "" {
				return cli.Usagef("--out is required")
			}
			if *advance < 0 {
				return cli.Usagef("--advance %d: want a positive number", *advance)
			}
			now := time.Now().UTC().Truncate(time.Second)
			if *nowFlag != "" {
				t, err := time.Parse(time.RFC3339, *nowFlag)
				if err != nil {
					return cli.Usagef("--now %q: %v", *nowFlag, err)
				}
				now = t
			}
			opts := repotest.Options{KeyCache: *keyCache, Workers: *workers, Progress: stderr}
			if *quiet {
				opts.Progress = nil
			}
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			start := time.Now()

			var repo *repotest.Repo
			if *advance == 0 && !*reset {
				if *baseURL == "" {
					return cli.Usagef("--base-url is required to create a repository")
				}
				p, err := repotest.LookupProfile(*profile)
				if err != nil {
					return cli.Usagef("--profile: %v", err)
				}
				repo, err = repotest.Create(*out, repotest.Config{Profile: p, Seed: *seed, BaseURL: *baseURL, Split: *split}, now, opts)
				if err != nil {
					return err
				}
			} else {
				if set["profile"] || set["seed"] || set["split"] {
					return cli.Usagef("--profile, --seed and --split apply when creating; %s keeps its own", *out)
				}
				var err error
				if repo, err = repotest.Open(*out, opts); err != nil {
					return err
				}
				if set["base-url"] && *baseURL != repo.Info().BaseURL {
					return fmt.Errorf("%s is served at %s, not %s", *out, repo.Info().BaseURL, *baseURL)
				}
				if *reset {
					if err := repo.ResetSession(now); err != nil {
						return err
					}
				}
				if err := repo.Advance(now, *advance); err != nil {
					return err
				}
			}
			in := repo.Info()
			fmt.Fprintf(stdout, "%s: profile %s, seed %d, session %s, serial %d: %d CAs, %d ROAs, %d VRPs, %d objects; snapshot %s (%d bytes), %d deltas listed; %s\n",
				*out, in.Profile.Name, in.Seed, in.SessionID, in.Serial, in.CAs, in.ROAs, len(repo.VRPs()), in.Objects,
				filepath.Join(*out, filepath.FromSlash(in.Snapshot.Path)), in.Snapshot.Size, len(in.Deltas), time.Since(start).Round(time.Millisecond))
			for _, r := range in.Repositories[1:] {
				fmt.Fprintf(stdout, "%s: second repository at %s: session %s, serial %d: %d objects; snapshot %s (%d bytes), %d deltas listed\n",
					filepath.Join(*out, r.Dir), r.BaseURL, r.SessionID, r.Serial, r.Objects,
					filepath.Join(*out, r.Dir, filepath.FromSlash(r.Snapshot.Path)), r.Snapshot.Size, len(r.Deltas))
			}
			return nil
		},
	}
}

// defaultKeyCache is rrdp-proxy/keys in the user's cache directory, or
// nothing when there is none.
func defaultKeyCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "rrdp-proxy", "keys")
}
