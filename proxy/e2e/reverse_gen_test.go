package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestReverseGenerated is TestReverseKrill on a repository that moves: a
// generated repository (repotest, the small profile) whose notification
// names its public host, https://localhost:3000/, served by nginx over
// plain HTTP on an internal loopback port, as a publication server writes
// it; `rrdp-proxy serve` in reverse mode under that name with fetch_from
// nginx's port. Over six serials, a session reset and a serial after it:
//
//   - relying parties that alternate between the origin and the proxy at
//     every request (the notification from one, the snapshot or deltas
//     from the other, both ways), right after the origin moved (the proxy
//     may still be a serial behind) and once the proxy serves the new
//     serial, never get anything but a 200 with the hash the notification
//     names;
//   - the proxy serves the origin's notification.xml, snapshot and listed
//     deltas byte for byte;
//   - rpki-client (with its cache, so it takes deltas) and FORT through
//     the proxy, with the repository's TAL (its TA certificate comes
//     through pass-through), output expected-vrps.csv at every step.
func TestReverseGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, rpTools...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{Profile: prof, Seed: 13, BaseURL: "https://localhost:3000/"}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	// nginx serves the repository's directory as it is: the notification
	// names https://localhost:3000/, the proxy.
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, Nginx: true, NoIPv6: true, HTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	internal := strings.TrimSuffix(origin.HTTPURL(), "/")
	// The TAL names https://localhost:3000/ta.cer, outside the default
	// pass-through paths.
	proc, client := startReverse(t, pki, internal, `passthrough_paths = ["/ta.cer"]`+"\n")

	a := &alternation{t: t, proxy: client, origin: &http.Client{Timeout: 30 * time.Second}, internal: internal, served: map[string]int{}}
	t.Cleanup(a.origin.CloseIdleConnections)
	// rp0, rp1, snapshot-only and slow switch sources at every round;
	// the last two sync only once the proxy has the new serial, each the
	// same way, so that deltas of both sources are fetched whatever the
	// proxy's timing.
	proxyFirst, originFirst := altProxy, altOrigin
	rps := []*altRP{{name: "rp0"}, {name: "rp1"}, {name: "snapshot-only"}, {name: "slow", every: 3},
		{name: "level, notification from the proxy", level: &proxyFirst}, {name: "level, notification from the origin", level: &originFirst}}
	turn := 0
	round := func(level bool) {
		t.Helper()
		for i, r := range rps {
			nsrc := altSource((turn + i) % 2)
			switch {
			case r.level != nil && !level, r.every > 0 && turn%r.every != 0:
				continue
			case r.level != nil:
				nsrc = *r.level
			case r.name == "snapshot-only":
				r.session = ""
			}
			a.sync(r, nsrc, 1-nsrc)
		}
		turn++
	}
	opts := rp.Options{TAL: filepath.Join(dir, repotest.TALPath), CAFile: pki.CAFile}
	rcCache := t.TempDir()
	step := func(what string) {
		t.Helper()
		in := repo.Info()
		a.waitLevel(what, in.SessionID, in.Serial)
		round(true)
		want, err := rp.ReadVRPCSV(filepath.Join(dir, repotest.VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		validateVRPs(t, ctx, fmt.Sprintf("%s (session %.8s, serial %d)", what, in.SessionID, in.Serial), opts, rcCache, want)
		if t.Failed() {
			t.FailNow()
		}
	}

	step("first serial")
	for i := range 7 {
		what := fmt.Sprintf("advance %d", i+1)
		if i == 5 {
			what = "session reset"
			err = repo.ResetSession(now)
		} else {
			err = repo.Advance(now, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The origin is ahead until the proxy's next poll: files of the
		// origin's new serial come through the proxy's pull-through,
		// those of the proxy's serial from the origin.
		round(false)
		round(false)
		step(what)
	}
	for _, k := range []string{"origin snapshot", "proxy snapshot", "origin delta", "proxy delta"} {
		if a.served[k] == 0 {
			t.Errorf("no %s was fetched: the alternation did not cover it (%v)", k, a.served)
		}
	}
	t.Logf("files fetched: %v; rounds with the proxy's notification behind the origin's: %d", a.served, a.behind)
	if log := proc.log.String(); strings.Contains(log, "level=ERROR") {
		t.Errorf("errors in the proxy's log:\n%s", log)
	}
}

// altSource is where a relying party of TestReverseGenerated sends one
// request: the origin (nginx's internal address) or the proxy
// (https://localhost:3000), both by the URI's path.
type altSource int

const (
	altOrigin altSource = iota
	altProxy
)

func (s altSource) String() string { return [...]string{"origin", "proxy"}[s] }

// alternation fetches from the origin and the proxy.
type alternation struct {
	t        *testing.T
	proxy    *http.Client // reaches https://localhost:3000
	origin   *http.Client
	internal string // http://127.0.0.1:PORT, nginx
	// served counts the files fetched, by source and kind; behind the
	// rounds in which the proxy's notification was of an older state
	// than the origin's.
	served map[string]int
	behind int
}

// get returns the status and body of the path of uri at src (64 MiB at
// most).
func (a *alternation) get(src altSource, uri string) (int, []byte) {
	a.t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		a.t.Fatal(err)
	}
	c, base := a.proxy, "https://localhost:3000"
	if src == altOrigin {
		c, base = a.origin, a.internal
	}
	resp, err := c.Get(base + u.Path)
	if err != nil {
		a.t.Fatalf("%s: GET %s: %v", src, u.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		a.t.Fatalf("%s: GET %s: %v", src, u.Path, err)
	}
	return resp.StatusCode, b
}

// fetch is get that fails the test unless the status is 200.
func (a *alternation) fetch(src altSource, uri string) []byte {
	a.t.Helper()
	code, b := a.get(src, uri)
	if code != http.StatusOK {
		a.t.Fatalf("%s: GET %s: got %d, want 200: %.200s", src, uri, code, b)
	}
	return b
}

func (a *alternation) notification(src altSource) ([]byte, *rrdpxml.Notification) {
	a.t.Helper()
	b := a.fetch(src, "https://localhost:3000/"+repotest.NotificationPath)
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	if err != nil {
		a.t.Fatalf("notification from the %s: %v", src, err)
	}
	return b, n
}

// altRP is an RRDP client that keeps its session and serial (deltas when
// it can, RFC 8182 section 3.4.1).
type altRP struct {
	name  string
	every int // syncs at every round (0) or every so many
	// level, if set, makes it sync only once the proxy has the origin's
	// serial, with the notification from there.
	level   *altSource
	session string
	serial  uint64
}

// sync reads the notification from nsrc and the files it names from
// fsrc, each checked against the hash the notification gives.
func (a *alternation) sync(r *altRP, nsrc, fsrc altSource) {
	a.t.Helper()
	_, n := a.notification(nsrc)
	if nsrc == altProxy {
		if _, o := a.notification(altOrigin); o.SessionID != n.SessionID || o.Serial != n.Serial {
			a.behind++
		}
	}
	check := func(what, uri string, want [32]byte) {
		a.t.Helper()
		if sha256.Sum256(a.fetch(fsrc, uri)) != want {
			a.t.Fatalf("%s: %s %s from the %s (notification of serial %d from the %s): hash mismatch", r.name, what, uri, fsrc, n.Serial, nsrc)
		}
		a.served[fsrc.String()+" "+what]++
	}
	if deltas, ok := n.DeltasFrom(r.session, r.serial); ok {
		for _, d := range deltas {
			check("delta", d.URI, d.Hash)
		}
	} else {
		check("snapshot", n.Snapshot.URI, n.Snapshot.Hash)
	}
	r.session, r.serial = n.SessionID, n.Serial
}

// waitLevel waits until the proxy serves session and serial, then checks
// that its notification.xml and every file it names are the origin's
// bytes.
func (a *alternation) waitLevel(what, session string, serial uint64) {
	a.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, n := a.notification(altProxy)
		if n.SessionID == session && n.Serial == serial {
			break
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: the proxy serves session %s serial %d after a minute, want %s %d", what, n.SessionID, n.Serial, session, serial)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	po, n := a.notification(altOrigin)
	if pp, _ := a.notification(altProxy); !bytes.Equal(po, pp) {
		a.t.Fatalf("%s: the proxy's notification.xml differs from the origin's:\n%s\n%s", what, pp, po)
	}
	uris := []string{n.Snapshot.URI}
	for _, d := range n.Deltas {
		uris = append(uris, d.URI)
	}
	for _, u := range uris {
		if !bytes.Equal(a.fetch(altOrigin, u), a.fetch(altProxy, u)) {
			a.t.Fatalf("%s: the proxy's %s differs from the origin's", what, u)
		}
	}
}
