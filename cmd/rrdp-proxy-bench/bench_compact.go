package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const compactBenchAbout = `Measure the compact format (rrdp-proxy compact) against the legacy XML and
the .bin on the same states, and optionally the compact client's time from
nothing to VRPs against rpki-client's full validation.

Each REPO_DIR (made by "rrdp-proxy gen") is copied under --work and only the
copy is evolved. For each: the repository is validated (transcode/rpki) and
published in the compact format twice, with its CA certificates (the
default) and lean (rrdp-proxy compact --omit-certificates: CA records in
place of the certificates below the TA); a new relying party's bytes
(notification + snapshot) are measured in XML, XML+gzip, .bin, .bin+gzip,
compact and compact+gzip; then --serials churn serials and one refresh serial 24 hours
later are generated, validated and published, and a day of deltas is that
refresh delta plus (--serials-per-day - 1) times the mean churn delta, as
"rrdp-proxy-bench bandwidth" models it.

With --rp the copy is served over HTTPS at the port of its base URL and
rpki-client (Debian's, run as root) validates it from an empty cache; then
each compact output is served over HTTPS and the compact client (the code of
rrdp-proxy sync --trust) fetches it, verifies it and writes the CSV, timed
the same way; the CSVs are compared with rpki-client's.`

func compactBenchCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	work := fs.String("work", "", "`directory` for the temporary copies (default: the system's)")
	serials := fs.Int("serials", 10, "churn serials to generate and measure per repository")
	perDay := fs.Int("serials-per-day", 1440, "serials the repository publishes a day")
	withRP := fs.Bool("rp", false, "time rpki-client and the compact client from nothing to VRPs")
	keyCache := fs.String("key-cache", defaultKeyCache(), "`directory` caching derived keys; empty for none")
	nowFlag := fs.String("now", "", "time of the validation and the churn serials, RFC 3339 (default: the clock); the refresh serial is 24h later")
	return &cli.Command{
		Name: "compact", Args: "[flags] REPO_DIR...", Summary: "bytes and client time of the compact format against XML and .bin",
		About: compactBenchAbout, Flags: fs, MinArgs: 1, MaxArgs: cli.Many,
		Run: func(args []string) error {
			now := time.Now().UTC().Truncate(time.Second)
			if *nowFlag != "" {
				t, err := time.Parse(time.RFC3339, *nowFlag)
				if err != nil {
					return cli.Usagef("--now %q: %v", *nowFlag, err)
				}
				now = t.UTC()
			}
			if *serials < 1 || *perDay < 1 {
				return cli.Usagef("--serials and --serials-per-day must be at least 1")
			}
			fmt.Fprintf(stdout, "command: %s\n\n", commandLine("compact", fs, args))
			fmt.Fprintln(stdout, "| scenario | new RP: XML | XML+gzip | .bin | .bin+gzip | compact | compact+gzip | XML / compact | day: XML | XML+gzip | .bin | .bin+gzip | compact | compact+gzip | XML / compact |")
			fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
			var times, shares []string
			for _, d := range args {
				r, err := benchCompactDir(d, *work, now, *serials, *perDay, *withRP, repotest.Options{KeyCache: *keyCache}, stderr)
				if err != nil {
					return err
				}
				for _, c := range r.variants {
					fmt.Fprintf(stdout, "| %s%s | %s | %s | %s | %s | %s | %s | %.1f× | %s | %s | %s | %s | %s | %s | %.1f× |\n", r.name, c.label(),
						humanBytes(r.boot.XML), humanBytes(r.boot.XMLGz), humanBytes(r.boot.Bin), humanBytes(r.boot.BinGz),
						humanBytes(c.bootCompact), humanBytes(c.bootCompactGz), float64(r.boot.XML)/float64(c.bootCompact),
						humanBytes(r.day.XML), humanBytes(r.day.XMLGz), humanBytes(r.day.Bin), humanBytes(r.day.BinGz), humanBytes(c.dayCompact), humanBytes(c.dayCompactGz), float64(r.day.XML)/float64(c.dayCompact))
					shares = append(shares, fmt.Sprintf("%s%s: %s of CA certificates (DER), %.0f%% of the compact snapshot", r.name, c.label(), humanBytes(c.certs), 100*float64(c.certs)/float64(c.bootCompact)))
				}
				times = append(times, r.times...)
			}
			fmt.Fprintln(stdout)
			for _, l := range shares {
				fmt.Fprintln(stdout, "- "+l)
			}
			if len(times) > 0 {
				fmt.Fprintln(stdout, "\n| scenario | VRPs | rpki-client, full validation | compact client, nothing to VRPs | speed-up | CSV equal | load average before |")
				fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | ---: | --- | --- |")
				for _, t := range times {
					fmt.Fprintln(stdout, t)
				}
			}
			return nil
		},
	}
}

type compactResult struct {
	name      string
	boot, day sizes
	// variants are the compact bytes, with certificates and lean.
	variants []compactBytes
	// times are the rows of the client times table.
	times []string
}

// compactBytes are one variant's bytes.
type compactBytes struct {
	lean                       bool
	bootCompact, bootCompactGz int64
	// certs is the bytes of the CA certificates in the compact snapshot.
	certs                    int64
	dayCompact, dayCompactGz int64
}

func (c compactBytes) label() string {
	if c.lean {
		return " (lean)"
	}
	return ""
}

// compactState is a repository copy with its validated tree and compact
// publications, one per variant.
type compactState struct {
	dir      string
	repo     *repotest.Repo
	src      rpki.MapSource
	v        *rpki.Validator
	ta       rpki.TrustAnchor
	signer   *compact.Signer
	variants []*compactVariant
}

// compactVariant is one compact publication of the repository.
type compactVariant struct {
	b     compact.Builder
	pub   *compact.Publication
	files map[string][]byte
}

func (s *compactState) apply(rel string) error {
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	d := rrdpxml.NewDecoder(f, rrdpxml.Limits{})
	defer d.Close()
	for {
		e, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if e.Withdraw {
			delete(s.src, e.URI)
		} else {
			s.src[e.URI] = slices.Clone(e.Content)
		}
	}
}

// publish validates the tree at now and publishes it in each variant; it
// returns the new files by variant.
func (s *compactState) publish(now time.Time) ([][]compact.File, *rpki.Result, error) {
	res, err := s.v.Validate(context.Background(), []rpki.TrustAnchor{s.ta}, now)
	if err != nil {
		return nil, nil, err
	}
	if len(res.Problems) > 0 {
		return nil, nil, fmt.Errorf("validate at %s: %d problems, the first %v", now.Format(time.RFC3339), len(res.Problems), res.Problems[0])
	}
	var out [][]compact.File
	for _, v := range s.variants {
		groups, err := v.b.Build(context.Background(), s.src, res, s.signer)
		if err != nil {
			return nil, nil, err
		}
		var fs []compact.File
		if v.pub == nil {
			v.pub, fs, err = compact.New("bench", groups, s.signer, compact.Options{})
		} else {
			v.pub, fs, err = v.pub.Next(groups, s.signer, compact.Options{})
		}
		if err != nil {
			return nil, nil, err
		}
		for _, f := range fs {
			v.files[f.Name] = f.Data
		}
		out = append(out, fs)
	}
	return out, res, nil
}

func fileNamed(fs []compact.File, suffix string) []byte {
	for _, f := range fs {
		if strings.HasSuffix(f.Name, suffix) {
			return f.Data
		}
	}
	return nil
}

func benchCompactDir(dir, work string, now time.Time, serials, perDay int, withRP bool, opts repotest.Options, stderr io.Writer) (compactResult, error) {
	var r compactResult
	tmp, err := os.MkdirTemp(work, "bench-compact-"+filepath.Base(dir)+"-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return r, err
	}
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		return r, fmt.Errorf("copy %s: %w", dir, err)
	}
	repo, err := repotest.Open(tmp, opts)
	if err != nil {
		return r, err
	}
	in := repo.Info()
	r.name = in.Profile.Name
	st := &compactState{dir: tmp, repo: repo, src: rpki.MapSource{}}
	for _, lean := range []bool{false, true} {
		st.variants = append(st.variants, &compactVariant{b: compact.Builder{OmitCertificates: lean}, files: map[string][]byte{}})
		r.variants = append(r.variants, compactBytes{lean: lean})
	}
	if st.ta, err = benchTA(tmp); err != nil {
		return r, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if st.signer, err = compact.NewSigner(ed25519.NewKeyFromSeed(seed)); err != nil {
		return r, err
	}
	if st.v, err = rpki.NewValidator(rpki.Config{Source: st.src, KeepPoints: true}); err != nil {
		return r, err
	}
	if err := st.apply(in.Snapshot.Path); err != nil {
		return r, err
	}
	fmt.Fprintf(stderr, "%s: validating and publishing serial %d\n", r.name, in.Serial)
	fs, _, err := st.publish(now)
	if err != nil {
		return r, err
	}
	base := in.BaseURL + "rrdp/"
	nx, err := measureNotificationFile(tmp, base)
	if err != nil {
		return r, err
	}
	sx, err := measurePath(tmp, in.Snapshot.Path)
	if err != nil {
		return r, err
	}
	r.boot = nx.add(sx)
	for i, v := range st.variants {
		n, s := fileNamed(fs[i], "notification.bin"), fileNamed(fs[i], "snapshot.bin")
		c := &r.variants[i]
		c.bootCompact = int64(len(n) + len(s))
		c.bootCompactGz = gzipSize(n) + gzipSize(s)
		for _, g := range v.pub.Groups {
			c.certs += int64(len(g.Certificate))
		}
	}
	if withRP {
		if r.times, err = timeClients(tmp, in, st, now, stderr); err != nil {
			return r, err
		}
	}

	// step publishes the next legacy serial; it returns its XML sizes and
	// the compact delta of each variant, plain and gzipped.
	step := func(at time.Time) (sizes, [][2]int64, error) {
		if err := repo.Advance(at, 1); err != nil {
			return sizes{}, nil, err
		}
		ds := repo.Info().Deltas
		d := ds[len(ds)-1]
		if err := st.apply(d.Path); err != nil {
			return sizes{}, nil, err
		}
		x, err := measurePath(tmp, d.Path)
		if err != nil {
			return sizes{}, nil, err
		}
		fs, _, err := st.publish(at)
		if err != nil {
			return sizes{}, nil, err
		}
		var out [][2]int64
		for _, f := range fs {
			b := fileNamed(f, "delta.bin")
			out = append(out, [2]int64{int64(len(b)), gzipSize(b)})
		}
		return x, out, nil
	}
	var churn sizes
	churnC := make([][2]int64, len(st.variants))
	for i := 0; i < serials; i++ {
		x, c, err := step(now)
		if err != nil {
			return r, fmt.Errorf("%s: churn serial %d: %w", r.name, i+1, err)
		}
		churn = churn.add(x)
		for j := range c {
			churnC[j][0] += c[j][0]
			churnC[j][1] += c[j][1]
		}
	}
	fmt.Fprintf(stderr, "%s: %d churn serials: XML %d bytes, compact %d bytes, lean %d bytes\n", r.name, serials, churn.XML, churnC[0][0], churnC[1][0])
	rx, rc, err := step(now.Add(24 * time.Hour))
	if err != nil {
		return r, fmt.Errorf("%s: refresh serial: %w", r.name, err)
	}
	f := float64(perDay-1) / float64(serials)
	r.day = rx.add(churn.scale(f))
	for j := range r.variants {
		r.variants[j].dayCompact = rc[j][0] + int64(float64(churnC[j][0])*f+0.5)
		r.variants[j].dayCompactGz = rc[j][1] + int64(float64(churnC[j][1])*f+0.5)
	}
	return r, nil
}

func benchTA(dir string) (rpki.TrustAnchor, error) {
	b, err := os.ReadFile(filepath.Join(dir, repotest.TALPath))
	if err != nil {
		return rpki.TrustAnchor{}, err
	}
	tal, err := rpki.ParseTAL(b)
	if err != nil {
		return rpki.TrustAnchor{}, err
	}
	cert, err := os.ReadFile(filepath.Join(dir, repotest.TACertPath))
	if err != nil {
		return rpki.TrustAnchor{}, err
	}
	return rpki.TrustAnchor{Name: "ta", TAL: tal, Cert: cert, CertFile: repotest.TACertPath}, nil
}

// timeClients times rpki-client's full validation of the repository in dir
// and the compact client on each of st's publications, and returns a table
// row for each.
func timeClients(dir string, in repotest.Info, st *compactState, now time.Time, stderr io.Writer) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	pkiDir, err := os.MkdirTemp("", "bench-compact-pki-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(pkiDir)
	pki, err := rp.NewPKI(pkiDir, rp.PKIConfig{})
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(in.BaseURL)
	if err != nil {
		return nil, err
	}
	var port int
	fmt.Sscanf(u.Port(), "%d", &port)
	load := loadAverage()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, Port: port, PortWait: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	cache, err := os.MkdirTemp("", "bench-rpki-client-")
	if err != nil {
		origin.Close()
		return nil, err
	}
	defer os.RemoveAll(cache)
	fmt.Fprintf(stderr, "%s: rpki-client from an empty cache\n", in.Profile.Name)
	rc, err := rp.RunRPKIClient(ctx, rp.Options{TAL: filepath.Join(dir, repotest.TALPath), CAFile: pki.CAFile, CacheDir: cache, Args: []string{"-s", "3000"}})
	origin.Close()
	if err != nil {
		return nil, err
	}
	if err := rc.Err(); err != nil {
		return nil, fmt.Errorf("rpki-client: %w", err)
	}

	var rows []string
	for i, v := range st.variants {
		row, err := timeCompactClient(dir, fmt.Sprintf("%s%s", in.Profile.Name, compactBytes{lean: i == 1}.label()), pki, st, v, rc, load, now)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// timeCompactClient serves v's files, times the compact client from
// nothing to VRPs on them and returns a table row comparing it with rc.
func timeCompactClient(dir, name string, pki *rp.PKI, st *compactState, v *compactVariant, rc *rp.Result, load string, now time.Time) (string, error) {
	out, err := os.MkdirTemp(dir, ".bench-compact-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(out)
	if err := os.Chmod(out, 0o755); err != nil {
		return "", err
	}
	for file, data := range v.files {
		p := filepath.Join(out, filepath.FromSlash(file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", err
		}
	}
	co, err := rp.NewOrigin(rp.OriginConfig{Dir: out, PKI: pki, NoIPv6: true})
	if err != nil {
		return "", err
	}
	defer co.Close()
	keys := compact.Keys{}
	id, _ := compact.KeyID(st.signer.Public())
	keys[string(id)] = st.signer.Public()
	client := &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{TLSClientConfig: pki.ClientTLS()}}
	notifURL := co.URL() + compact.NotificationName
	base, _ := url.Parse(notifURL)
	get := func(ref string) ([]byte, error) {
		r, err := url.Parse(ref)
		if err != nil {
			return nil, err
		}
		resp, err := client.Get(base.ResolveReference(r).String())
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d", ref, resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<30+1))
		if int64(len(b)) > 4<<30 {
			return nil, fmt.Errorf("%s: more than 4 GiB", ref)
		}
		return b, err
	}
	start := time.Now()
	notif, err := get(notifURL)
	if err != nil {
		return "", err
	}
	_, cres, err := compact.Sync(nil, notif, get, compact.Trust{Keys: keys, TAs: [][]byte{st.ta.TAL.SPKI}}, now)
	if err != nil {
		return "", err
	}
	var csv bytes.Buffer
	if err := cres.WriteCSV(&csv); err != nil {
		return "", err
	}
	took := time.Since(start)
	equal := "yes"
	if !bytes.Equal(csv.Bytes(), rc.Output["csv"]) {
		equal = fmt.Sprintf("no: %s", rpki.DiffVRPs(plainVRPs(cres), rc.VRPs, 3))
	}
	return fmt.Sprintf("| %s | %d | %v | %v | %.1f× | %s | %s |", name, len(cres.VRPs), rc.Elapsed.Round(time.Millisecond), took.Round(time.Millisecond),
		float64(rc.Elapsed)/float64(took), equal, load), nil
}

func plainVRPs(res *rpki.Result) []rpki.VRP {
	out := make([]rpki.VRP, len(res.VRPs))
	for i, v := range res.VRPs {
		out[i] = v.VRP
	}
	return out
}
