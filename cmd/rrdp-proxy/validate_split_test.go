package main

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
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// rpkiClientMachineLines matches the lines of rpki-client's JSON that
// describe the machine and the run, and the cache cleaning counters.
var rpkiClientMachineLines = regexp.MustCompile(`(?m)^\t\t"(buildmachine|buildtime|elapsedtime|usertime|systemtime|cachedir_[a-z_]+)": .*\n|^\t\t\t"/.*\.tal"\n`)

// TestValidateSplitTree validates one tree published in two RRDP
// repositories, each served by its own HTTPS origin on the loopback
// interface: rrdp-proxy gen --split writes them, rrdp-proxy sync --once
// copies each into a tree of its own, and rrdp-proxy validate --tal ta.tal
// TREE_A TREE_B must print exactly the generator's VRPs, as CSV byte for
// byte what rpki-client 8.2 writes for the same two repositories, and the
// VRPs FORT 1.5.4 writes. Then both repositories advance two serials
// (rpki-client and the syncs apply the deltas) and the same holds. The
// second tree alone validates nothing: the TA's publication point is in
// the first.
func TestValidateSplitTree(t *testing.T) {
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, repotest.SplitDir), 0o755); err != nil {
		t.Fatal(err)
	}
	var origins [2]*rp.Origin
	for i, d := range []string{dir, filepath.Join(dir, repotest.SplitDir)} {
		if origins[i], err = rp.NewOrigin(rp.OriginConfig{Dir: d, PKI: pki}); err != nil {
			t.Fatal(err)
		}
		defer origins[i].Close()
	}
	keys := t.TempDir()
	gen := func(args ...string) {
		t.Helper()
		code, out, stderr := runCLI(t, append([]string{"gen", "--out", dir, "--key-cache", keys, "--quiet"}, args...)...)
		if code != 0 {
			t.Fatalf("gen %v: exit %d: %s", args, code, stderr)
		}
		t.Log(strings.TrimSpace(out))
	}
	gen("--base-url", origins[0].URL(), "--split", origins[1].URL(), "--seed", "3")

	trees := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	tal := filepath.Join(dir, repotest.TALPath)
	rcCache := t.TempDir()
	check := func(step string) {
		t.Helper()
		for i, o := range origins {
			if code, _, stderr := runCLI(t, "sync", "--once", "--ca-file", pki.CAFile, "--out", trees[i], o.URL()+repotest.NotificationPath); code != 0 {
				t.Fatalf("%s: sync %s: exit %d: %s", step, o.URL(), code, stderr)
			}
		}
		code, stdout, stderr := runCLI(t, "validate", "--tal", tal, trees[0], trees[1])
		if code != 0 {
			t.Fatalf("%s: validate: exit %d: %s", step, code, stderr)
		}
		t.Logf("%s: %s", step, strings.SplitN(stderr, "\n", 2)[0])
		got, err := rpki.ParseVRPCSV([]byte(stdout))
		if err != nil {
			t.Fatalf("%s: validate's CSV: %v", step, err)
		}
		want, err := rp.ReadVRPCSV(filepath.Join(dir, repotest.VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatalf("%s: no expected VRPs", step)
		}
		if d := rpki.DiffVRPs(got, want, 10); d != "" {
			t.Errorf("%s: validate's VRPs differ from the generator's:\n%s", step, d)
		}
		if !strings.Contains(stderr, "(0 failing)") || !strings.Contains(stderr, " 0 objects rejected") {
			t.Errorf("%s: validate reports failures:\n%s", step, stderr)
		}

		rc, err := rp.RunRPKIClient(ctx, rp.Options{TAL: tal, CAFile: pki.CAFile, CacheDir: rcCache})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := rc.Err(); err != nil {
			t.Errorf("%s: %v", step, err)
		}
		if stdout != string(rc.Output["csv"]) {
			t.Errorf("%s: validate's CSV differs from rpki-client's; as sets: %s", step, rpki.DiffVRPs(got, rc.VRPs, 10))
		}
		code, js, stderr := runCLI(t, "validate", "--json", "--tal", tal, trees[0], trees[1])
		if code != 0 {
			t.Fatalf("%s: validate --json: exit %d: %s", step, code, stderr)
		}
		if got, want := rpkiClientMachineLines.ReplaceAll([]byte(js), nil), rpkiClientMachineLines.ReplaceAll(rc.Output["json"], nil); !bytes.Equal(got, want) {
			t.Errorf("%s: validate's JSON differs from rpki-client's (machine lines masked):\ngot:\n%s\nwant:\n%s", step, got, want)
		}
		if !strings.Contains(js, `"repositories": 3,`) {
			t.Errorf("%s: JSON does not count 3 repositories (two RRDP, one TA):\n%s", step, js)
		}
		fo, err := rp.RunFORT(ctx, rp.Options{TAL: tal, CAFile: pki.CAFile})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := fo.Err(); err != nil {
			t.Errorf("%s: %v", step, err)
		}
		if d := rpki.DiffVRPs(got, fo.VRPs, 10); d != "" {
			t.Errorf("%s: validate's VRPs differ from FORT's:\n%s", step, d)
		}
		t.Logf("%s: %d VRPs, equal to rpki-client's (%v) and FORT's (%v)", step, len(got), rc.Elapsed.Round(time.Millisecond), fo.Elapsed.Round(time.Millisecond))

		// The second repository alone: no TA, nothing from it.
		_, stdout, stderr = runCLI(t, "validate", "--tal", tal, trees[1])
		if stdout != "ASN,IP Prefix,Max Length,Trust Anchor,Expires\n" {
			t.Errorf("%s: the second tree alone gives VRPs:\n%s", step, stdout)
		}
		if !strings.Contains(stderr, "CA ") {
			t.Errorf("%s: the second tree alone: the failing TA is not reported:\n%s", step, stderr)
		}
	}
	check("first serial")
	gen("--advance", "2")
	check("after two serials")
}
