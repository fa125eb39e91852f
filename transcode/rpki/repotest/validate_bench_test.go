package repotest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// benchRepo returns the repository of the benchmark: RRDP_PROXY_BENCH_REPO
// names one made by "rrdp-proxy gen" (its base URL must be
// https://localhost:PORT/, where the benchmark serves it); otherwise the
// profile RRDP_PROXY_BENCH_PROFILE (default small) is generated, with the
// key cache of RRDP_PROXY_KEY_CACHE or the package's.
func benchRepo(b *testing.B) (*Repo, string) {
	b.Helper()
	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		kc = keyCache
	}
	if dir := os.Getenv("RRDP_PROXY_BENCH_REPO"); dir != "" {
		r, err := Open(dir, Options{KeyCache: kc})
		if err != nil {
			b.Fatal(err)
		}
		return r, dir
	}
	name := os.Getenv("RRDP_PROXY_BENCH_PROFILE")
	if name == "" {
		name = "small"
	}
	p, err := LookupProfile(name)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	r, err := Create(dir, Config{Profile: p, Seed: 1, BaseURL: "https://localhost:3444/"}, time.Now().UTC().Truncate(time.Second), Options{KeyCache: kc})
	if err != nil {
		b.Fatal(err)
	}
	return r, dir
}

// loadAverage returns the first field of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// BenchmarkValidateVsRPKIClient measures, in one run and on one tree, the
// validation of a repository by rpki-client 8.2 (-n: no fetching, its
// cache as it stands) and by the validator (a fresh one per iteration,
// reading the same cache directory; and one kept across iterations, which
// reuses every unchanged publication point). Each iteration checks the
// VRP count. Compare the ns/op of the sub-benchmarks for the ratio; the
// load average is logged before each.
func BenchmarkValidateVsRPKIClient(b *testing.B) {
	rp.Require(b, "root", "unshare", "mount", "rpki-client")
	repo, dir := benchRepo(b)
	u, err := url.Parse(repo.Info().BaseURL)
	if err != nil {
		b.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || u.Hostname() != "localhost" {
		b.Fatalf("base URL %s: want https://localhost:PORT/", repo.Info().BaseURL)
	}
	pki, err := rp.NewPKI(b.TempDir(), rp.PKIConfig{})
	if err != nil {
		b.Fatal(err)
	}
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, Port: port, PortWait: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer origin.Close()
	ctx := context.Background()
	cache := b.TempDir()
	opts := rp.Options{TAL: filepath.Join(dir, TALPath), CAFile: pki.CAFile, CacheDir: cache}
	first, err := rp.RunRPKIClient(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := first.Err(); err != nil {
		b.Fatal(err)
	}
	want := len(first.VRPs)
	b.Logf("%s: %d CAs, %d ROAs, %d VRPs; rpki-client's first run (fetching) took %v", repo.Info().Profile.Name, repo.Info().CAs, repo.Info().ROAs, want, first.Elapsed.Round(time.Millisecond))
	ta := repoTA(b, dir)
	src, err := rpki.OpenTree(cache)
	if err != nil {
		b.Fatal(err)
	}
	validate := func(b *testing.B, v *rpki.Validator) {
		res, err := v.Validate(ctx, []rpki.TrustAnchor{ta}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if len(res.VRPs) != want {
			b.Fatalf("validator: %d VRPs, want rpki-client's %d; first problems: %v", len(res.VRPs), want, res.Problems[:min(3, len(res.Problems))])
		}
	}
	b.Run("rpki-client", func(b *testing.B) {
		b.Logf("load average %s", loadAverage())
		o := opts
		o.Args = []string{"-n"}
		for b.Loop() {
			res, err := rp.RunRPKIClient(ctx, o)
			if err != nil {
				b.Fatal(err)
			}
			if len(res.VRPs) != want {
				b.Fatalf("rpki-client -n: %d VRPs, want %d: %v", len(res.VRPs), want, res.Err())
			}
		}
	})
	b.Run("validator", func(b *testing.B) {
		b.Logf("load average %s", loadAverage())
		b.ReportAllocs()
		for b.Loop() {
			v, err := rpki.NewValidator(rpki.Config{Source: src})
			if err != nil {
				b.Fatal(err)
			}
			validate(b, v)
		}
	})
	b.Run("validator-unchanged", func(b *testing.B) {
		b.Logf("load average %s", loadAverage())
		v, err := rpki.NewValidator(rpki.Config{Source: src})
		if err != nil {
			b.Fatal(err)
		}
		validate(b, v)
		b.ReportAllocs()
		for b.Loop() {
			validate(b, v)
		}
	})
}
