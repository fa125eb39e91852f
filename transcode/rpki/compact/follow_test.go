package compact

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"google.golang.org/protobuf/proto"
)

// follower is a generated legacy repository, its compact publications
// (one per variant) and a compact client following each.
type follower struct {
	t        testing.TB
	dir      string
	repo     *repotest.Repo
	src      rpki.MapSource
	signer   *Signer
	channels []*channel
	// legacySerial is the repository's serial last applied to src.
	legacySerial uint64
}

// channel is one compact publication of the repository and its client.
type channel struct {
	name   string
	b      Builder
	pub    *Publication
	files  files
	client *State
	// fetched lists the files the client fetched in the last sync.
	fetched []string
}

func newChannels() []*channel {
	var out []*channel
	for _, v := range variants {
		out = append(out, &channel{name: v.name, b: Builder{OmitCertificates: v.lean}, files: files{}})
	}
	return out
}

func newFollower(t testing.TB, profile, baseURL string, now time.Time) *follower {
	t.Helper()
	p, err := repotest.LookupProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{t: t, dir: t.TempDir(), src: rpki.MapSource{}, signer: testSigner(t, 7), channels: newChannels()}
	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		kc = filepath.Join(os.TempDir(), "rrdp-proxy-compact-test-keys")
	}
	f.repo, err = repotest.Create(f.dir, repotest.Config{Profile: p, Seed: 1, BaseURL: baseURL}, now, repotest.Options{KeyCache: kc})
	if err != nil {
		t.Fatal(err)
	}
	f.reload()
	return f
}

// reload reads the repository's current snapshot into src.
func (f *follower) reload() {
	clear(f.src)
	info := f.repo.Info()
	applyRRDP(f.t, f.src, filepath.Join(f.dir, filepath.FromSlash(info.Snapshot.Path)))
	f.legacySerial = info.Serial
}

// advance publishes n legacy serials and applies their deltas to src.
func (f *follower) advance(now time.Time, n int) {
	f.t.Helper()
	if err := f.repo.Advance(now, n); err != nil {
		f.t.Fatal(err)
	}
	for _, d := range f.repo.Info().Deltas {
		if d.Serial > f.legacySerial {
			applyRRDP(f.t, f.src, filepath.Join(f.dir, filepath.FromSlash(d.Path)))
		}
	}
	f.legacySerial = f.repo.Info().Serial
}

func (f *follower) ta() rpki.TrustAnchor {
	f.t.Helper()
	ta, err := repotest.TrustAnchor(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return ta
}

// publish validates src, publishes the compact state of each channel (a
// new session with fresh) and syncs its client; it returns the
// validator's result and the clients', by channel.
func (f *follower) publish(now time.Time, fresh string) (validator *rpki.Result, clients []*rpki.Result) {
	f.t.Helper()
	v, err := rpki.NewValidator(rpki.Config{Source: f.src, KeepPoints: true})
	if err != nil {
		f.t.Fatal(err)
	}
	validator, err = v.Validate(context.Background(), []rpki.TrustAnchor{f.ta()}, now)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ch := range f.channels {
		groups, err := ch.b.Build(context.Background(), f.src, validator, f.signer)
		if err != nil {
			f.t.Fatal(err)
		}
		var fs []File
		if ch.pub == nil || fresh != "" {
			ch.pub, fs, err = New(fresh, groups, f.signer, Options{})
		} else {
			ch.pub, fs, err = ch.pub.Next(groups, f.signer, Options{})
		}
		if err != nil {
			f.t.Fatal(err)
		}
		ch.files.add(fs)
		ch.fetched = ch.fetched[:0]
		fetch := func(uri string) ([]byte, error) {
			ch.fetched = append(ch.fetched, uri)
			return ch.files.fetch(uri)
		}
		st, res, err := Sync(ch.client, ch.files[NotificationName], fetch, trust(f.t, f.signer), now)
		if err != nil {
			f.t.Fatalf("%s: %v", ch.name, err)
		}
		ch.client = st
		clients = append(clients, res)
	}
	return validator, clients
}

// TestFollowMatchesValidator follows a generated repository through
// deltas and a session reset, with CA certificates and lean: at each step
// each compact client's CSV must
// equal the validator's on the legacy tree (which equals rpki-client's,
// see repotest's TestValidatorMatchesRelyingParties) byte for byte.
func TestFollowMatchesValidator(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	f := newFollower(t, "small", "https://localhost:1/", now)
	check := func(step string, v *rpki.Result, cs []*rpki.Result) {
		t.Helper()
		if len(v.VRPs) == 0 {
			t.Fatalf("%s: no VRPs", step)
		}
		for i, c := range cs {
			if got, want := csv(t, c), csv(t, v); !bytes.Equal(got, want) {
				t.Errorf("%s, %s: client CSV differs from the validator's:\n%s", step, f.channels[i].name, rpki.DiffVRPs(plain(c), plain(v), 10))
			}
		}
	}
	v, c := f.publish(now, "s1")
	check("first serial", v, c)
	for i := 1; i <= 3; i++ {
		f.advance(now, 1)
		v, c = f.publish(now, "")
		check("after a delta", v, c)
		for _, ch := range f.channels {
			if len(ch.fetched) != 1 || !strings.HasSuffix(ch.fetched[0], "/delta.bin") {
				t.Errorf("after a delta: the %s client fetched %v, want one delta", ch.name, ch.fetched)
				continue
			}
			// An unchanged CA record is left out of the delta.
			var d irpkipb.CompactDelta
			if err := proto.Unmarshal(ch.files["compact/"+ch.fetched[0]], &d); err != nil {
				t.Fatal(err)
			}
			omitted, sent := 0, 0
			for _, g := range d.Cas {
				if g.CaOmitted {
					omitted++
				}
				if g.Manifest.GetCa() != nil {
					sent++
				}
			}
			if lean := ch.b.OmitCertificates; lean && omitted == 0 || !lean && omitted+sent > 0 {
				t.Errorf("%s: a delta of %d groups, %d with their CA record omitted, %d with one", ch.name, len(d.Cas), omitted, sent)
			}
		}
	}
	for _, ch := range f.channels {
		if got, want := ch.client.Serial, uint64(4); got != want {
			t.Errorf("%s client at serial %d, want %d", ch.name, got, want)
		}
	}
	if err := f.repo.ResetSession(now); err != nil {
		t.Fatal(err)
	}
	f.reload()
	v, c = f.publish(now, "s2")
	check("after a session reset", v, c)
}

func plain(res *rpki.Result) []rpki.VRP {
	out := make([]rpki.VRP, len(res.VRPs))
	for i, v := range res.VRPs {
		out[i] = v.VRP
	}
	return out
}

// TestFollowMatchesRPKIClient serves generated repositories to the real
// rpki-client 8.2 and checks that the compact clients' CSV (with CA
// certificates and lean) equals
// rpki-client's byte for byte, at the first serial, after deltas and after
// a session reset. small runs by default; RRDP_PROXY_BIG_PROFILES names
// more ("paper-1ca", minutes; "paper-1ca,paper-10kca"), or 1 for
// paper-1ca, paper-10kca and large.
func TestFollowMatchesRPKIClient(t *testing.T) {
	rp.Require(t, "root", "unshare", "mount", "rpki-client", "openssl")
	profiles := []string{"small"}
	switch big := os.Getenv("RRDP_PROXY_BIG_PROFILES"); big {
	case "":
	case "1":
		profiles = append(profiles, "paper-1ca", "paper-10kca", "large")
	default:
		profiles = append(profiles, strings.Split(big, ",")...)
	}
	for _, name := range profiles {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name != "small" {
				t.Skip("short")
			}
			followRPKIClient(t, name)
		})
	}
}

func followRPKIClient(t *testing.T, profile string) {
	// large: four runs of rpki-client of about 5 minutes each on two cores.
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The origin serves the directory the follower generates into: made
	// first (empty), the repository created in it after.
	dir := t.TempDir()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	now := time.Now().UTC().Truncate(time.Second)
	p, err := repotest.LookupProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	f := &follower{t: t, dir: dir, src: rpki.MapSource{}, signer: testSigner(t, 7), channels: newChannels()}
	kc := os.Getenv("RRDP_PROXY_KEY_CACHE")
	if kc == "" {
		kc = filepath.Join(os.TempDir(), "rrdp-proxy-compact-test-keys")
	}
	if f.repo, err = repotest.Create(dir, repotest.Config{Profile: p, Seed: 1, BaseURL: origin.URL()}, now, repotest.Options{KeyCache: kc}); err != nil {
		t.Fatal(err)
	}
	f.reload()
	opts := rp.Options{TAL: filepath.Join(dir, repotest.TALPath), CAFile: pki.CAFile, CacheDir: t.TempDir(), Args: []string{"-s", "600"}}
	step := func(name, fresh string) {
		t.Helper()
		rc, err := rp.RunRPKIClient(ctx, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := rc.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		at := time.Now().UTC()
		_, cs := f.publish(at, fresh)
		for i, c := range cs {
			ch := f.channels[i]
			if got := csv(t, c); !bytes.Equal(got, rc.Output["csv"]) {
				t.Errorf("%s, %s: compact client's CSV differs from rpki-client's (%d and %d bytes): %s", name, ch.name, len(got), len(rc.Output["csv"]), rpki.DiffVRPs(plain(c), rc.VRPs, 10))
			}
			t.Logf("%s, %s: %d VRPs, client at serial %d, rpki-client %v", name, ch.name, len(c.VRPs), ch.client.Serial, rc.Elapsed.Round(time.Millisecond))
		}
	}
	step("first serial", "s1")
	f.advance(now, 1)
	step("after 1 delta", "")
	f.advance(now, 3)
	step("after 3 more legacy serials", "")
	if err := f.repo.ResetSession(now); err != nil {
		t.Fatal(err)
	}
	f.reload()
	step("after a session reset", "s2")
}
