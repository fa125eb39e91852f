package repotest

import (
	"github.com/irpki/rrdp-proxy/transcode/rpki"

	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestRelyingParties serves a small repository from a local HTTPS origin
// and checks that rpki-client 8.2 and FORT 1.5.4 output exactly its
// expected VRPs, without a problem in their logs: first from the snapshot,
// then after three serials (from the deltas, with the same caches), then
// after a session reset.
func TestRelyingParties(t *testing.T) {
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "fort", "openssl", "faketime")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

	now := time.Now().UTC().Truncate(time.Second)
	p, err := LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := Create(dir, Config{Profile: p, Seed: 42, BaseURL: origin.URL()}, now, Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	opts := rp.Options{TAL: filepath.Join(dir, TALPath), CAFile: pki.CAFile}
	rcOpts := opts
	rcOpts.CacheDir = t.TempDir()
	fortOpts := opts
	fortOpts.CacheDir = t.TempDir()
	// FORT's clock runs 60 times faster than the real one, and FORT asks
	// for the notification If-Modified-Since its own time of the last
	// fetch: started at now, its clock soon runs ahead of the origin's
	// file times and it never sees a change. Started half an hour back,
	// it stays behind for the whole test (30 real seconds), and the
	// repository (manifests from an hour back) is valid all along.
	fortOpts.Time = now.Add(-30 * time.Minute)
	var fort *rp.FORT
	defer func() {
		if fort == nil {
			return
		}
		if err := fort.Close(); err != nil {
			t.Error(err)
		}
	}()

	// fetched returns the paths the origin served with status 200 since
	// the last call.
	fetched := func() map[string]bool {
		t.Helper()
		reqs, err := origin.Requests()
		if err != nil {
			t.Fatal(err)
		}
		if err := origin.Reset(); err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, r := range reqs {
			if r.Status == 200 {
				m[r.Path] = true
			}
		}
		return m
	}
	// check applies change to the repository, then waits for FORT's next
	// validation cycle and runs rpki-client; each must output the expected
	// VRPs without a problem. It returns the paths each relying party
	// fetched. FORT keeps polling in the background, but after its cycle
	// it has nothing left to fetch, so the rpki-client window holds
	// rpki-client's downloads only.
	check := func(what string, change func() error) (fo, rc map[string]bool) {
		t.Helper()
		fetched()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want, err := rp.ReadVRPCSV(filepath.Join(dir, VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			t.Fatal("no expected VRPs")
		}
		if fort == nil {
			if fort, err = rp.StartFORT(fortOpts); err != nil {
				t.Fatal(err)
			}
		}
		res, err := fort.Next(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
			t.Errorf("%s: fort VRPs differ from %s:\n%s", what, VRPPath, d)
		}
		fo = fetched()

		res, err = rp.RunRPKIClient(ctx, rcOpts)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
			t.Errorf("%s: rpki-client VRPs differ from %s:\n%s", what, VRPPath, d)
		}
		t.Logf("%s: %d VRPs; rpki-client took %v", what, len(want), res.Elapsed.Round(time.Millisecond))
		return fo, fetched()
	}
	snapshotPath := func() string { return "/" + repo.Info().Snapshot.Path }

	fo, rc := check("first run", func() error { return nil })
	for rp, got := range map[string]map[string]bool{"rpki-client": rc, "fort": fo} {
		if !got[snapshotPath()] {
			t.Errorf("first run: %s did not fetch the snapshot %s; fetched %v", rp, snapshotPath(), keys(got))
		}
	}

	fo, rc = check("after 3 deltas", func() error { return repo.Advance(now, 3) })
	if n := len(repo.Info().Deltas); n != 3 {
		t.Errorf("after 3 deltas: notification lists %d deltas, want 3", n)
	}
	for rp, got := range map[string]map[string]bool{"rpki-client": rc, "fort": fo} {
		for _, d := range repo.Info().Deltas {
			if !got["/"+d.Path] {
				t.Errorf("after 3 deltas: %s did not fetch delta %d; fetched %v", rp, d.Serial, keys(got))
			}
		}
		for p := range got {
			if strings.HasSuffix(p, "/snapshot.xml") {
				t.Errorf("after 3 deltas: %s fetched a snapshot, %s", rp, p)
			}
		}
	}

	fo, rc = check("after a session reset", func() error { return repo.ResetSession(now) })
	for rp, got := range map[string]map[string]bool{"rpki-client": rc, "fort": fo} {
		if !got[snapshotPath()] {
			t.Errorf("after a session reset: %s did not fetch the new snapshot %s; fetched %v", rp, snapshotPath(), keys(got))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
