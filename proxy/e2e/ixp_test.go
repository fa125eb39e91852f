package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestIXPOffline is the IXP's path to its end (deploy/README.md, "An
// IXP"): Krill's repository (../shared/realdata) at its origin,
// https://localhost:3000; `rrdp-proxy serve` in mirror mode in front of it
// as the IXP's mirror; on the relying parties' host `rrdp-proxy sync
// --once` of the mirror's notification.bin into repos/krill, then
// deploy/rpki-mirror-cache building the cache, then the unmodified relying
// parties offline on it: `rpki-client -n -d CACHE` and FORT with
// `--local-repository=CACHE --rsync.enabled=false --http.enabled=false`,
// their clock at 2023-02-14. Both must output the oracle's VRPs without a
// single request to the origin or the mirror. Then what does not work, as
// deploy/README.md says: on a cache missing one CA's publication point
// FORT leaves out that CA's VRPs, rpki-client 8.2 -n gives up the run.
func TestIXPOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl", "faketime", "curl", "cp", "sh")
	good := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	oracle := realdata.Path(t, "krill-sync", "oracle")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The publication server's host: the RRDP files and the TA
	// certificate where the TAL names it (links to the data set's files).
	host := t.TempDir()
	if err := os.Symlink(filepath.Join(good, "rrdp"), filepath.Join(host, "rrdp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(host, "ta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(good, "ta.cer"), filepath.Join(host, "ta", "ta.cer")); err != nil {
		t.Fatal(err)
	}
	// The origin holds the lock of port 3000 (rp.LockPort) until Close,
	// at the end of the test: other packages' tests stay off the port.
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: host, PKI: pki, Port: 3000, PortWait: 2 * time.Minute})
	if err != nil {
		t.Fatalf("the origin must listen at localhost:3000, which the Krill certificates name: %v", err)
	}
	t.Cleanup(func() { origin.Close() })

	mirror := startMirror(t, pki)

	// The relying parties' host.
	rpHost := t.TempDir()
	repos := filepath.Join(rpHost, "repos")
	cache := filepath.Join(rpHost, "cache")
	if err := os.Mkdir(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	src := mirror + "localhost:3000/rrdp/notification.bin"
	r := runSync(t, ctx, pki, src, filepath.Join(repos, "krill"))
	t.Logf("rrdp-proxy sync %s: %v", src, r)
	tal := filepath.Join(rpHost, "ta.tal")
	if err := copyFileTo(tal, filepath.Join(good, "ta.tal")); err != nil {
		t.Fatal(err)
	}
	script := deployScript(t)
	buildCache := func() string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "sh", script, repos, cache, tal)
		cmd.Env = append(os.Environ(), "CURL_CA_BUNDLE="+pki.CAFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("rpki-mirror-cache: %v\n%s", err, out)
		}
		gen, err := os.Readlink(cache)
		if err != nil {
			t.Fatalf("rpki-mirror-cache: the cache is not its symbolic link: %v\n%s", err, out)
		}
		return gen
	}
	gen1 := buildCache()
	// The layout each relying party reads: the trees' objects at
	// <rsync host>/<path>, the TA certificate at ta/<tal>/<file>
	// (rpki-client) and at <https host>/<path> (FORT).
	want, err := os.ReadFile(filepath.Join(good, "ta.cer"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"ta/ta/ta.cer", "localhost:3000/ta/ta.cer"} {
		if got, err := os.ReadFile(filepath.Join(cache, rel)); err != nil || string(got) != string(want) {
			t.Errorf("cache/%s: %v, %d bytes; want the TA certificate, %d bytes", rel, err, len(got), len(want))
		}
	}
	if s := compareTrees(t, filepath.Join(repos, "krill", "localhost"), filepath.Join(cache, "localhost")); s.files != 135 {
		t.Errorf("cache/localhost holds %d objects, want the 135 of the tree", s.files)
	}
	// A second run swaps in a new generation and keeps the previous one
	// for a relying party that is still reading it.
	gen2 := buildCache()
	if gen2 == gen1 {
		t.Errorf("a second run kept generation %s", gen1)
	}
	for _, g := range []string{gen1, gen2} {
		if _, err := os.Stat(filepath.Join(rpHost, g)); err != nil {
			t.Errorf("generation %s: %v", g, err)
		}
	}
	// A directory it did not make is not replaced.
	if out, err := exec.CommandContext(ctx, "sh", script, repos, repos).CombinedOutput(); err == nil || !strings.Contains(string(out), "not replacing") {
		t.Errorf("rpki-mirror-cache with a plain directory as CACHE: %v, %s; want an error saying it is not replaced", err, out)
	}

	oracleVRPs := krillOracle(t, oracle)
	// The mirror polls the origin's notification meanwhile; anything else
	// the origin answers after this point came from a relying party.
	others := func() string {
		t.Helper()
		c, err := origin.Counts()
		if err != nil {
			t.Fatal(err)
		}
		for k := range c {
			if strings.HasPrefix(k, "/rrdp/notification.xml ") {
				delete(c, k)
			}
		}
		return fmt.Sprint(c)
	}
	before := others()
	opts := rp.Options{TAL: tal, CAFile: pki.CAFile, CacheDir: cache, Time: time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)}
	rcOpts, fortOpts := opts, opts
	rcOpts.Args = []string{"-n"}
	fortOpts.Args = []string{"--http.enabled=false"} // with the harness's --rsync.enabled=false
	for _, c := range []struct {
		name string
		run  func(context.Context, rp.Options) (*rp.Result, error)
		opts rp.Options
	}{
		{"rpki-client -n", rp.RunRPKIClient, rcOpts},
		{"fort offline", rp.RunFORT, fortOpts},
	} {
		res, err := c.run(ctx, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Offline, each says where it takes the files from: that is the
		// recipe working, not a problem.
		probs := res.Problems[:0:0]
		for _, p := range res.Problems {
			if !offlineNotice.MatchString(p) {
				probs = append(probs, p)
			}
		}
		if res.ExitCode != 0 || len(probs) > 0 {
			t.Errorf("%s: exit status %d, problems:\n%s", c.name, res.ExitCode, strings.Join(probs, "\n"))
		}
		if d := rpki.DiffVRPs(res.VRPs, oracleVRPs, 10); d != "" {
			t.Errorf("%s on the synced cache: VRPs differ from the oracle's:\n%s", c.name, d)
		}
		t.Logf("%s: %d VRPs (the oracle: %d) in %v", c.name, len(res.VRPs), len(oracleVRPs), res.Elapsed.Round(time.Millisecond))
	}
	if after := others(); after != before {
		t.Errorf("the relying parties reached the origin: requests %v before, %v after", before, after)
	}
	// What the origin served: the snapshot to the mirror only, the TA
	// certificate to rpki-mirror-cache (twice).
	if !strings.Contains(before, "/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/snapshot.xml 200:1") ||
		!strings.Contains(before, "/ta/ta.cer 200:2") {
		t.Errorf("the origin answered %v; want the snapshot once (to the mirror) and ta/ta.cer twice", before)
	}

	// What does not work: a cache missing one publication point (a
	// repository the mirror does not carry, a sync that never succeeded).
	// FORT leaves out that CA's VRPs; rpki-client 8.2 -n gives up the whole
	// run (its parser crashes), so its output stays the previous run's.
	// deploy/README.md says so; revisit it when this changes.
	partial := filepath.Join(rpHost, "partial")
	if err := os.Mkdir(partial, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(repos, "krill"), partial+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(partial, "krill", "localhost", "repo", "benchmark-0")); err != nil {
		t.Fatal(err)
	}
	partialCache := filepath.Join(rpHost, "partial-cache")
	cmd := exec.CommandContext(ctx, "sh", script, partial, partialCache, tal)
	cmd.Env = append(os.Environ(), "CURL_CA_BUNDLE="+pki.CAFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpki-mirror-cache on the partial trees: %v\n%s", err, out)
	}
	rcOpts.CacheDir, fortOpts.CacheDir = partialCache, partialCache
	res, err := rp.RunRPKIClient(ctx, rcOpts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.VRPs) != 0 || !strings.Contains(res.Stderr, "not all files processed") {
		t.Errorf("rpki-client -n on a cache without one publication point: %d VRPs, stderr:\n%s\nwant none and \"not all files processed\", as deploy/README.md says; update it", len(res.VRPs), res.Stderr)
	}
	res, err = rp.RunFORT(ctx, fortOpts)
	if err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(res.VRPs, oracleVRPs, 20); !strings.Contains(d, "got 90 VRPs, want 100: 10 missing, 0 unexpected") {
		t.Errorf("fort offline on a cache without one publication point (of 10 ROAs): %d VRPs, want the oracle's but those 10:\n%s", len(res.VRPs), d)
	}
}

// offlineNotice matches what the relying parties log in offline mode
// about a clean run: rpki-client -n takes each repository from its cache,
// FORT without HTTP and rsync the TA certificate from its local files.
var offlineNotice = regexp.MustCompile(`^rpki-client: \S+: using cache$|WRN \[Validation\]: \S+\.tal: Looking for the TA certificate at the local files\.$`)

// startMirror runs `rrdp-proxy serve` in mirror mode in front of
// https://localhost:3000/rrdp/notification.xml, TLS on a free loopback
// port, and returns its mirror_base once the repository is ready.
func startMirror(t *testing.T, pki *rp.PKI) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the process binds it
	base := "https://localhost:" + strings.TrimPrefix(addr, "127.0.0.1:") + "/"
	file := filepath.Join(t.TempDir(), "mirror.toml")
	conf := fmt.Sprintf(`[server]
listen = []
tls_listen = [%q]
tls_cert = %q
tls_key = %q
mirror_base = %q
node = "ixp"

[cache]
memory = "64MiB"

[[repository]]
name = "krill"
origin = "https://localhost:3000/rrdp/notification.xml"
mode = "mirror"
ca_file = %q
poll_interval = "1s"
max_backoff = "2s"
`, addr, pki.CertFile, pki.KeyFile, base, pki.CAFile)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := spawnServe(t, "mirror", file)
	client := localhostClient(pki, addr, 10*time.Second)
	defer client.CloseIdleConnections()
	proc.waitReady(t, client, base+"readyz?repo=krill")
	return base
}

// deployScript is the path of deploy/rpki-mirror-cache.
func deployScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "deploy", "rpki-mirror-cache")) // go test runs in proxy/e2e
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// copyFileTo copies src to dst.
func copyFileTo(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
