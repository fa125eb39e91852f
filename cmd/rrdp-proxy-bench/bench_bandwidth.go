package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const bandwidthAbout = `Measure the bytes of the paper's scenarios in four encodings: XML,
XML+gzip, .bin and .bin+gzip (gzip: compress/gzip, level 6).

Each REPO_DIR is a repository made by "rrdp-proxy gen"; it is copied into a
temporary directory (under --work) and only the copy is evolved, so REPO_DIR
never changes. Without REPO_DIR, the repositories of --profiles are
generated there (slow for the big ones: minutes to tens of minutes).

For each repository it measures
  - a new relying party: notification + snapshot, at the repository's
    current serial;
  - a day of deltas: --serials churn deltas generated one after the other
    (CAs and ROAs added, replaced, withdrawn, as "gen --advance" does) and
    one delta generated 24 hours later, which reissues every manifest and
    CRL the churn deltas did not (they are renewed daily); a day is that
    refresh delta plus
    (--serials-per-day - 1) times the mean churn delta;
  - the core->edge link: an edge node polls the core's notification
    --edge-polls times a day and fetches the day's deltas, against what the
    edge serves as XML (regenerated from the .bin) to --rps relying parties
    of which --new-rps (a fraction) bootstrap from the snapshot that day and
    the rest poll --rp-polls times a day and fetch the day's deltas.

Prints the report (Markdown); with --out DIR, writes bandwidth.md,
bandwidth.svg and bandwidth.json into DIR too.`

// bandwidthConfig is what runBenchBandwidth measures and how it models a day.
type bandwidthConfig struct {
	Profiles []string
	Dirs     []string
	Work     string // parent of the temporary copies
	Serials  int    // churn serials measured
	Now      time.Time
	Model    dayModel
	Options  repotest.Options
	BaseURL  string // of generated repositories
	Seed     int64
}

func bandwidthCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("bandwidth", flag.ContinueOnError)
	out := fs.String("out", "", "also write bandwidth.md, bandwidth.svg and bandwidth.json into `DIR`")
	profiles := fs.String("profiles", "paper-1ca,paper-10kca,large", "comma-separated `profiles` to generate when no REPO_DIR is given")
	work := fs.String("work", "", "`directory` for the temporary copies (default: the system's)")
	serials := fs.Int("serials", 10, "churn serials to generate and measure per repository")
	nowFlag := fs.String("now", "", "time of the churn deltas, RFC 3339 (default: the clock); the refresh delta is 24h later")
	keyCache := fs.String("key-cache", defaultKeyCache(), "`directory` caching derived keys; empty for none")
	seed := fs.Int64("seed", 1, "seed of generated repositories")
	m := defaultDayModel()
	fs.IntVar(&m.SerialsPerDay, "serials-per-day", m.SerialsPerDay, "serials the repository publishes a day")
	fs.IntVar(&m.RPs, "rps", m.RPs, "relying parties behind the edge node")
	fs.Float64Var(&m.NewRPs, "new-rps", m.NewRPs, "`fraction` of the relying parties that bootstrap from the snapshot in the day")
	fs.IntVar(&m.RPPolls, "rp-polls", m.RPPolls, "notification fetches per relying party per day")
	fs.IntVar(&m.EdgePolls, "edge-polls", m.EdgePolls, "notification fetches of the edge node from the core per day")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	from := fs.String("from", "", "render the report again from this bandwidth.json `file`, measuring nothing; model flags given override its model")
	refs := fs.String("reference", "", "comma-separated real snapshot.xml `files` to measure beside, for comparison")
	return &cli.Command{
		Name: "bandwidth", Args: "[flags] [REPO_DIR...]", Summary: "bytes of the paper's scenarios in XML, XML+gzip, .bin and .bin+gzip",
		About: bandwidthAbout, Flags: fs, MaxArgs: cli.Many,
		Run: func(args []string) error {
			cfg := bandwidthConfig{Dirs: args, Work: *work, Serials: *serials, Model: m, BaseURL: "https://localhost:3000/", Seed: *seed,
				Now: time.Now().UTC().Truncate(time.Second), Options: repotest.Options{KeyCache: *keyCache, Progress: stderr}}
			if *quiet {
				cfg.Options.Progress = nil
			}
			if len(cfg.Dirs) == 0 {
				for _, p := range strings.Split(*profiles, ",") {
					if p = strings.TrimSpace(p); p != "" {
						cfg.Profiles = append(cfg.Profiles, p)
					}
				}
			}
			if *nowFlag != "" {
				t, err := time.Parse(time.RFC3339, *nowFlag)
				if err != nil {
					return cli.Usagef("--now %q: %v", *nowFlag, err)
				}
				cfg.Now = t
			}
			if err := m.check(); err != nil {
				return cli.Usagef("%v", err)
			}
			if *from != "" {
				return rerenderBandwidth(fs, *from, *out, m, stdout)
			}
			if cfg.Serials < 1 {
				return cli.Usagef("--serials %d: want at least 1", cfg.Serials)
			}
			if len(cfg.Dirs) == 0 && len(cfg.Profiles) == 0 {
				return cli.Usagef("no REPO_DIR and no --profiles")
			}
			var scs []scenario
			for _, p := range cfg.Profiles {
				sc, err := measureProfile(cfg, p)
				if err != nil {
					return err
				}
				scs = append(scs, sc)
			}
			for _, d := range cfg.Dirs {
				sc, err := measureDir(cfg, d)
				if err != nil {
					return err
				}
				scs = append(scs, sc)
			}
			rep := &bandwidthReport{Command: commandLine("bandwidth", fs, args), Serials: cfg.Serials, Model: m, Scenarios: scs}
			for _, f := range strings.Split(*refs, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				s, err := measurePath(filepath.Dir(f), filepath.Base(f))
				if err != nil {
					return err
				}
				rep.References = append(rep.References, reference{Path: f, Snapshot: s})
			}
			return writeBandwidth(*out, rep, stdout)
		},
	}
}

// rerenderBandwidth writes the report of the measurements in the
// bandwidth.json file from, with the model flags that fs set.
func rerenderBandwidth(fs *flag.FlagSet, from, out string, m dayModel, stdout io.Writer) error {
	js, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read %s: %w", from, err)
	}
	var rep bandwidthReport
	if err := json.Unmarshal(js, &rep); err != nil {
		return fmt.Errorf("decode %s: %w", from, err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "serials-per-day":
			rep.Model.SerialsPerDay = m.SerialsPerDay
		case "rps":
			rep.Model.RPs = m.RPs
		case "new-rps":
			rep.Model.NewRPs = m.NewRPs
		case "rp-polls":
			rep.Model.RPPolls = m.RPPolls
		case "edge-polls":
			rep.Model.EdgePolls = m.EdgePolls
		}
	})
	if err := rep.Model.check(); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return writeBandwidth(out, &rep, stdout)
}

// writeBandwidth prints the report's Markdown on stdout and, unless dir is
// empty, writes its three files into dir.
func writeBandwidth(dir string, rep *bandwidthReport, stdout io.Writer) error {
	md := rep.markdown()
	if _, err := stdout.Write(md); err != nil || dir == "" {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bandwidth.json: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"bandwidth.md", md}, {"bandwidth.svg", rep.svg()}, {"bandwidth.json", append(js, '\n')}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// measureProfile generates a repository of profile p in a temporary
// directory and measures it.
func measureProfile(cfg bandwidthConfig, p string) (scenario, error) {
	prof, err := repotest.LookupProfile(p)
	if err != nil {
		return scenario{}, err
	}
	tmp, err := os.MkdirTemp(cfg.Work, "bench-"+p+"-")
	if err != nil {
		return scenario{}, fmt.Errorf("create a directory for %s: %w", p, err)
	}
	defer os.RemoveAll(tmp)
	repo, err := repotest.Create(tmp, repotest.Config{Profile: prof, Seed: cfg.Seed, BaseURL: cfg.BaseURL}, cfg.Now, cfg.Options)
	if err != nil {
		return scenario{}, fmt.Errorf("generate %s: %w", p, err)
	}
	return measureRepo(cfg, tmp, repo)
}

// measureDir copies the repository in dir and measures the copy.
func measureDir(cfg bandwidthConfig, dir string) (scenario, error) {
	tmp, err := os.MkdirTemp(cfg.Work, "bench-"+filepath.Base(dir)+"-")
	if err != nil {
		return scenario{}, fmt.Errorf("create a directory for a copy of %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		return scenario{}, fmt.Errorf("copy %s: %w", dir, err)
	}
	repo, err := repotest.Open(tmp, cfg.Options)
	if err != nil {
		return scenario{}, err
	}
	return measureRepo(cfg, tmp, repo)
}

// measureRepo measures the repository in dir (a copy: it is evolved).
func measureRepo(cfg bandwidthConfig, dir string, repo *repotest.Repo) (scenario, error) {
	in := repo.Info()
	sc := scenario{Name: in.Profile.Name, CAs: in.CAs, ROAs: in.ROAs, Objects: in.Objects, Serial: in.Serial, Serials: cfg.Serials}
	base := in.BaseURL + path.Dir(repotest.NotificationPath) + "/"
	var err error
	if sc.Notification, err = measureNotificationFile(dir, base); err != nil {
		return sc, err
	}
	if sc.Snapshot, err = measurePath(dir, in.Snapshot.Path); err != nil {
		return sc, err
	}
	if err := repo.Advance(cfg.Now, cfg.Serials); err != nil {
		return sc, fmt.Errorf("advance %s by %d serials: %w", sc.Name, cfg.Serials, err)
	}
	ds := repo.Info().Deltas
	if len(ds) < cfg.Serials {
		return sc, fmt.Errorf("advance %s: %d deltas listed, want %d", sc.Name, len(ds), cfg.Serials)
	}
	for _, d := range ds[len(ds)-cfg.Serials:] {
		s, err := measurePath(dir, d.Path)
		if err != nil {
			return sc, err
		}
		sc.Churn = sc.Churn.add(s)
	}
	if err := repo.Advance(cfg.Now.Add(24*time.Hour), 1); err != nil {
		return sc, fmt.Errorf("advance %s by a day: %w", sc.Name, err)
	}
	in = repo.Info()
	if sc.Refresh, err = measurePath(dir, in.Deltas[len(in.Deltas)-1].Path); err != nil {
		return sc, err
	}
	sc.Listed = len(in.Deltas)
	if sc.NotificationEnd, err = measureNotificationFile(dir, base); err != nil {
		return sc, err
	}
	return sc, nil
}

// measurePath measures the snapshot or delta at rel in dir.
func measurePath(dir, rel string) (sizes, error) {
	x, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return sizes{}, fmt.Errorf("read %s: %w", rel, err)
	}
	s, _, err := measureFile(x)
	if err != nil {
		return sizes{}, fmt.Errorf("measure %s: %w", rel, err)
	}
	return s, nil
}

// measureNotificationFile measures the notification of the repository in
// dir. The hashes of the .bin files do not change the size of
// notification.bin, so the XML files' hashes stand in for them.
func measureNotificationFile(dir, base string) (sizes, error) {
	x, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(repotest.NotificationPath)))
	if err != nil {
		return sizes{}, fmt.Errorf("read notification: %w", err)
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(x), rrdpxml.Limits{})
	if err != nil {
		return sizes{}, fmt.Errorf("decode notification: %w", err)
	}
	sums := irpki.Sums{Snapshot: n.Snapshot.Hash, Deltas: map[uint64][32]byte{}}
	for _, d := range n.Deltas {
		sums.Deltas[d.Serial] = d.Hash
	}
	return measureNotification(x, base, sums)
}
