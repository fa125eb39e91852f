package repotest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// applyRRDP applies an RRDP snapshot or delta file to src (ApplyRRDP).
func applyRRDP(t testing.TB, src rpki.MapSource, file string) {
	t.Helper()
	if err := ApplyRRDP(src, file); err != nil {
		t.Fatal(err)
	}
}

// repoTA returns the trust anchor of a generated repository.
func repoTA(t testing.TB, dir string) rpki.TrustAnchor {
	t.Helper()
	ta, err := TrustAnchor(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ta
}

// rpkiClientMachineLines matches the lines of rpki-client's JSON that
// describe the machine and the run, and the cache cleaning counters.
var rpkiClientMachineLines = regexp.MustCompile(`(?m)^\t\t"(buildmachine|buildtime|elapsedtime|usertime|systemtime|cachedir_[a-z_]+)": .*\n|^\t\t\t"/.*\.tal"\n`)

// TestValidatorMatchesRelyingParties generates repositories, serves them
// to rpki-client 8.2 and FORT 1.5.4 and checks that the validator's
// output equals theirs on the same state: rpki-client's CSV byte for byte
// and its JSON but for the machine lines, FORT's VRPs as a set. It does so
// from the first snapshot, after one delta and after three more
// (rpki-client applies them to its cache; the validator applies them to its
// source and revalidates incrementally, and must agree with a fresh
// validator too) and after a session reset. small and paper-1ca run by
// default (paper-1ca takes minutes and is skipped with -short);
// RRDP_PROXY_BIG_PROFILES=1 adds paper-10kca and large, or names the
// profiles to add ("paper-10kca").
func TestValidatorMatchesRelyingParties(t *testing.T) {
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl")
	profiles := []string{"small", "paper-1ca"}
	switch big := os.Getenv("RRDP_PROXY_BIG_PROFILES"); big {
	case "":
	case "1":
		profiles = append(profiles, "paper-10kca", "large")
	default:
		profiles = append(profiles, strings.Split(big, ",")...)
	}
	for _, name := range profiles {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name != "small" {
				t.Skip("short")
			}
			matchRelyingParties(t, name)
		})
	}
}

func matchRelyingParties(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	p, err := LookupProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	start := time.Now()
	// Seed 1 and RRDP_PROXY_KEY_CACHE (rrdp-proxy gen's --key-cache
	// directory, say) let the big profiles reuse keys derived before.
	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		kc = keyCache
	}
	repo, err := Create(dir, Config{Profile: p, Seed: 1, BaseURL: origin.URL()}, now, Options{KeyCache: kc})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: generated %d CAs, %d ROAs in %v", name, repo.Info().CAs, repo.Info().ROAs, time.Since(start).Round(time.Millisecond))
	// -s 600: rpki-client's own deadline for a run (60 s in the harness)
	// is too short for the snapshot of a big profile on a loaded machine.
	opts := rp.Options{TAL: filepath.Join(dir, TALPath), CAFile: pki.CAFile, CacheDir: t.TempDir(), Args: []string{"-s", "600"}}
	ta := repoTA(t, dir)
	src := rpki.MapSource{}
	applyRRDP(t, src, filepath.Join(dir, filepath.FromSlash(repo.Info().Snapshot.Path)))
	v, err := rpki.NewValidator(rpki.Config{Source: src})
	if err != nil {
		t.Fatal(err)
	}

	check := func(step string) {
		t.Helper()
		rc, err := rp.RunRPKIClient(ctx, opts)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := rc.Err(); err != nil {
			t.Errorf("%s: %v", step, err)
		}
		fo, err := rp.RunFORT(ctx, rp.Options{TAL: opts.TAL, CAFile: opts.CAFile})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := fo.Err(); err != nil {
			t.Errorf("%s: %v", step, err)
		}
		at := time.Now().UTC()
		vStart := time.Now()
		res, err := v.Validate(ctx, []rpki.TrustAnchor{ta}, at)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(vStart)
		fresh, err := rpki.NewValidator(rpki.Config{Source: src})
		if err != nil {
			t.Fatal(err)
		}
		fromScratch, err := fresh.Validate(ctx, []rpki.TrustAnchor{ta}, at)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d VRPs, %d ASPAs; validator %v (%d points reused, %d revalidated), rpki-client %v, fort %v",
			step, len(res.VRPs), len(res.ASPAs), took.Round(time.Millisecond), res.Stats.ReusedPoints, res.Stats.RevalidatedPoints,
			rc.Elapsed.Round(time.Millisecond), fo.Elapsed.Round(time.Millisecond))
		for _, pr := range res.Problems {
			t.Errorf("%s: problem: %v", step, pr)
		}
		var csv, csvScratch, js bytes.Buffer
		if err := res.WriteCSV(&csv); err != nil {
			t.Fatal(err)
		}
		if err := fromScratch.WriteCSV(&csvScratch); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(csv.Bytes(), csvScratch.Bytes()) {
			t.Errorf("%s: the incremental run differs from a fresh one", step)
		}
		if !bytes.Equal(csv.Bytes(), rc.Output["csv"]) {
			got, _ := rpki.ParseVRPCSV(csv.Bytes())
			t.Errorf("%s: CSV differs from rpki-client's (%d and %d bytes); as sets: %s", step, csv.Len(), len(rc.Output["csv"]), rpki.DiffVRPs(got, rc.VRPs, 10))
			writeDiffFiles(t, step, "csv", csv.Bytes(), rc.Output["csv"])
		}
		if err := res.WriteJSON(&js, rpki.JSONMeta{}); err != nil {
			t.Fatal(err)
		}
		if got, want := rpkiClientMachineLines.ReplaceAll(js.Bytes(), nil), rpkiClientMachineLines.ReplaceAll(rc.Output["json"], nil); !bytes.Equal(got, want) {
			t.Errorf("%s: JSON differs from rpki-client's (machine lines masked)", step)
			writeDiffFiles(t, step, "json", got, want)
		}
		plain := make([]rpki.VRP, len(res.VRPs))
		for i, x := range res.VRPs {
			plain[i] = x.VRP
		}
		if d := rpki.DiffVRPs(plain, fo.VRPs, 10); d != "" {
			t.Errorf("%s: VRPs differ from FORT's: %s", step, d)
		}
		want, err := rp.ReadVRPCSV(filepath.Join(dir, VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		if d := rpki.DiffVRPs(plain, want, 10); d != "" {
			t.Errorf("%s: VRPs differ from the generator's: %s", step, d)
		}
	}

	check("first snapshot")
	advance := func(n int) {
		t.Helper()
		serial := repo.Info().Serial
		if err := repo.Advance(now, n); err != nil {
			t.Fatal(err)
		}
		for _, d := range repo.Info().Deltas {
			if d.Serial > serial {
				applyRRDP(t, src, filepath.Join(dir, filepath.FromSlash(d.Path)))
			}
		}
	}
	advance(1)
	check("after 1 delta")
	advance(3)
	check("after 3 more deltas")
	if err := repo.ResetSession(now); err != nil {
		t.Fatal(err)
	}
	clear(src)
	applyRRDP(t, src, filepath.Join(dir, filepath.FromSlash(repo.Info().Snapshot.Path)))
	check("after a session reset")
}

// writeDiffFiles keeps both sides of a difference for a look with diff(1).
func writeDiffFiles(t *testing.T, step, ext string, got, want []byte) {
	t.Helper()
	dir := os.Getenv("RRDP_PROXY_DIFF_DIR")
	if dir == "" {
		return
	}
	base := filepath.Join(dir, regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(t.Name()+"-"+step, "-"))
	os.WriteFile(base+".got."+ext, got, 0o644)
	os.WriteFile(base+".want."+ext, want, 0o644)
}
