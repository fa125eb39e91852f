package deploy_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// reverseHost is the public host name of examples/reverse.toml.
const reverseHost = "rrdp.example.net"

// TestExampleReverse starts examples/reverse.toml for real, as
// `rrdp-proxy serve --config`, with only what this machine decides
// substituted: the listen port, the state directory and the fetch_from
// port (a free loopback port each). Its origin stays the public
// https://rrdp.example.net/notification.xml, which does not resolve here:
// a publication server's directory (a generated repository naming
// https://rrdp.example.net/, at serial 2 with a delta) is served over plain
// HTTP at the fetch_from address, as the commented origin block of
// nginx/rrdp-front.conf serves it. The proxy serves the origin's
// notification, snapshot and delta byte for byte under the public Host,
// the TA certificate through pass-through, and notification.bin; every
// request the origin saw carried the public Host. `rrdp-proxy sync
// --fetch-from` then verifies everything the proxy serves, and `rrdp-proxy
// validate` on that tree, with the repository's TAL, outputs its
// expected VRPs.
func TestExampleReverse(t *testing.T) {
	bin := binary(t)
	raw, err := os.ReadFile(filepath.Join("examples", "reverse.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.Contains(s, `origin = "https://`+reverseHost+`/notification.xml"`) || !strings.Contains(s, `hosts = ["`+reverseHost+`"]`) {
		t.Fatalf("reverse.toml: the origin is not https://%s/notification.xml or its hosts not [%s]", reverseHost, reverseHost)
	}

	// The publication server's directory: the repository names its RRDP
	// files under https://rrdp.example.net/rrdp/ and its notification is
	// served at the top, as reverse.toml's origin says (the bytes of a
	// notification do not depend on where it is served).
	gen := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(gen, repotest.Config{Profile: repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, Seed: 17,
		BaseURL: "https://" + reverseHost + "/"}, now, repotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Advance(now, 1); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	notif, err := os.ReadFile(filepath.Join(gen, repotest.NotificationPath))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "notification.xml"), notif, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(gen, "rrdp"), filepath.Join(root, "rrdp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "ta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(gen, repotest.TACertPath), filepath.Join(root, "ta", "ta.cer")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hosts := map[string]int{}
	files := http.FileServer(http.Dir(root))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts[r.Host]++
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer origin.Close()

	dir := t.TempDir()
	port := freePort(t)
	s = mustReplace(t, s, `listen = ["127.0.0.1:8080"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, port))
	s = mustReplace(t, s, `state_dir = "/var/lib/rrdp-proxy"`, fmt.Sprintf("state_dir = %q", filepath.Join(dir, "state")))
	s = mustReplace(t, s, `fetch_from = "http://127.0.0.1:8081"`, fmt.Sprintf("fetch_from = %q", origin.URL))
	conf := filepath.Join(dir, "rrdp-proxy.toml")
	if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "config", "check", conf).CombinedOutput(); err != nil || !strings.Contains(string(out), "from "+origin.URL) {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-done
		}
	}()

	proxy := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 10 * time.Second}
	waitOK(t, client, proxy+"/readyz?repo=example-rir", done, &log)
	get := func(path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, proxy+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = reverseHost
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, b
	}

	// The origin's bytes at the origin's paths, under the public Host.
	in := repo.Info()
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(notif), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Serial != 2 || len(in.Deltas) != 1 {
		t.Fatalf("the origin is at serial %d with %d deltas, want 2 and 1", n.Serial, len(in.Deltas))
	}
	if code, b := get("/notification.xml"); code != http.StatusOK || !bytes.Equal(b, notif) {
		t.Errorf("/notification.xml: got %d, %d bytes; want 200 and the origin's %d bytes", code, len(b), len(notif))
	}
	for _, f := range []repotest.File{in.Snapshot, in.Deltas[0]} {
		if code, b := get("/" + f.Path); code != http.StatusOK || sha256.Sum256(b) != f.Hash {
			t.Errorf("/%s: got %d, %d bytes; want 200 and the origin's %d bytes", f.Path, code, len(b), f.Size)
		}
	}
	ta, err := os.ReadFile(filepath.Join(gen, repotest.TACertPath))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := get("/ta/ta.cer"); code != http.StatusOK || !bytes.Equal(b, ta) {
		t.Errorf("/ta/ta.cer through pass-through: got %d, %d bytes; want 200 and the origin's %d", code, len(b), len(ta))
	}
	if code, _ := get("/notification.bin"); code != http.StatusOK {
		t.Errorf("/notification.bin: got %d, want 200", code)
	}
	mu.Lock()
	if len(hosts) != 1 || hosts[reverseHost] == 0 {
		t.Errorf("the origin saw Host headers %v, want only %s", hosts, reverseHost)
	}
	mu.Unlock()

	// A verifying client of the proxy under the public name, then the
	// validation of what it got.
	tree := filepath.Join(t.TempDir(), "tree")
	out, err := exec.Command(bin, "sync", "--once", "--fetch-from", proxy, "--out", tree, "https://"+reverseHost+"/notification.xml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "serial 2") {
		t.Fatalf("sync of the proxy: %v\n%s", err, out)
	}
	csv := filepath.Join(t.TempDir(), "vrps.csv")
	vout, err := exec.Command(bin, "validate", "--quiet", "--tal", filepath.Join(gen, repotest.TALPath), tree).Output()
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, vout)
	}
	if err := os.WriteFile(csv, vout, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := rp.ReadVRPCSV(csv)
	if err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(got, repo.VRPs(), 10); d != "" || len(got) == 0 {
		t.Errorf("VRPs of the tree synced from the proxy (%d) differ from the repository's:\n%s", len(got), d)
	}
	t.Logf("synced from the proxy: session %s serial %d, %d objects; %d VRPs, the repository's", in.SessionID, in.Serial, in.Objects, len(got))

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop within 60s of SIGTERM\n%s", log.String())
	}
	if t.Failed() {
		t.Logf("serve log:\n%s", log.String())
	}
}
