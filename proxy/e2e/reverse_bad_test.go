package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestReverseBadOrigin: `rrdp-proxy serve` in reverse mode (as in
// TestReverseGenerated) in front of an origin that misbehaves. An origin
// whose new notification lists a snapshot it does not serve (404), or one
// that fails its hash, leaves the previous serial served byte for byte,
// the error counted by kind and shown on /status.json and /status; once
// the origin heals the proxy serves the new serial. A file passed through
// that is over passthrough_max is refused (502) and a request under a Host
// the repository does not list is never fetched from the origin.
func TestReverseBadOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx and rrdp-proxy serve")
	}
	rp.Require(t, "nginx")
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const public = "https://localhost:3000/"
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(dir, repotest.Config{Profile: repotest.Profile{Members: 2, ROAs: 4, EEKeys: 2}, Seed: 19, BaseURL: public}, now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"other.txt": 100, "big.txt": 8 << 10} {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// nginx serves a view of the repository whose notification the test
	// publishes (originView, nothing rewritten) once it has spoiled the
	// files the new one names: the proxy never sees the new serial whole.
	view := t.TempDir()
	originView(t, dir, view, public, public)
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: view, PKI: pki, Nginx: true, NoIPv6: true, HTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	internal := strings.TrimSuffix(origin.HTTPURL(), "/")
	_, client := startReverse(t, pki, internal, `passthrough_paths = ["/ta.cer", "/other.txt", "/big.txt"]
passthrough_max = "4KiB"
`)
	a := &alternation{t: t, proxy: client, origin: &http.Client{Timeout: 30 * time.Second}, internal: internal}
	t.Cleanup(a.origin.CloseIdleConnections)

	for _, tc := range []struct {
		name string
		kind string // of /status.json's errors
		// spoil spoils the snapshot file p of the new serial and
		// returns what heals it.
		spoil func(t *testing.T, p string) (heal func())
	}{
		{"snapshot 404", "http_status", func(t *testing.T, p string) func() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return func() { writeFile(t, p, b) }
		}},
		{"snapshot hash mismatch", "hash", func(t *testing.T, p string) func() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, flipBase64(t, b))
			return func() { writeFile(t, p, b) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prevXML, prev := a.notification(altProxy)
			before := reverseStatus(t, client)
			if err := repo.Advance(now, 1); err != nil {
				t.Fatal(err)
			}
			in := repo.Info()
			heal := tc.spoil(t, filepath.Join(dir, filepath.FromSlash(in.Snapshot.Path)))
			originView(t, dir, view, public, public)
			// The proxy's next polls fail on the snapshot.
			deadline := time.Now().Add(time.Minute)
			var st statusRepo
			for {
				st = reverseStatus(t, client)
				if st.Errors[tc.kind] > before.Errors[tc.kind] && strings.Contains(st.LastError, in.Snapshot.Path) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/status.json after a minute: errors %v, last error %q; want more %s errors than %v and an error naming %s", st.Errors, st.LastError, tc.kind, before.Errors, in.Snapshot.Path)
				}
				time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
			}
			t.Logf("/status.json: serial %d, health %s, errors %v, last error %q", st.Serial, st.Health, st.Errors, st.LastError)
			if st.Session != prev.SessionID || st.Serial != prev.Serial || st.Health != "retrying" {
				t.Errorf("/status.json: session %s serial %d, health %q; want the previous %s %d, retrying", st.Session, st.Serial, st.Health, prev.SessionID, prev.Serial)
			}
			if got, _ := a.notification(altProxy); !bytes.Equal(got, prevXML) {
				t.Errorf("the proxy's notification changed after a failed sync:\n%s", got)
			}
			if code, b := a.get(altProxy, prev.Snapshot.URI); code != http.StatusOK {
				t.Errorf("the previous serial's snapshot: got %d %.200s", code, b)
			}
			page := string(a.fetch(altProxy, public+"status"))
			for _, want := range []string{in.Snapshot.Path, tc.kind + ": "} {
				if !strings.Contains(page, want) {
					t.Errorf("/status does not show %q", want)
				}
			}
			heal()
			a.waitLevel("healed", in.SessionID, in.Serial)
		})
	}

	t.Run("passthrough over the cap", func(t *testing.T) {
		if code, _ := a.get(altProxy, public+"big.txt"); code != http.StatusBadGateway {
			t.Errorf("8 KiB over a 4 KiB passthrough_max: got %d, want 502", code)
		}
		ta, err := os.ReadFile(filepath.Join(dir, repotest.TACertPath))
		if err != nil {
			t.Fatal(err)
		}
		if b := a.fetch(altProxy, public+repotest.TACertPath); !bytes.Equal(b, ta) {
			t.Errorf("the TA certificate through pass-through: got %d bytes, want the origin's %d", len(b), len(ta))
		}
	})
	t.Run("host not configured", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, public+"other.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("Host evil.example: got %d, want 404", resp.StatusCode)
		}
		if n := originPaths(t, origin, "/other.txt"); n != 0 {
			t.Errorf("the origin was asked for /other.txt %d times for Host evil.example, want never", n)
		}
		a.fetch(altProxy, public+"other.txt") // under localhost, the host listed
		if n := originPaths(t, origin, "/other.txt"); n != 1 {
			t.Errorf("the origin was asked for /other.txt %d times for Host localhost, want once", n)
		}
	})
}

// statusRepo is what TestReverseBadOrigin reads of a repository on
// /status.json.
type statusRepo struct {
	Session   string            `json:"session"`
	Serial    uint64            `json:"serial"`
	Health    string            `json:"health"`
	LastError string            `json:"last_error"`
	Errors    map[string]uint64 `json:"errors"`
}

// reverseStatus returns the repository "rir" of the proxy's /status.json.
func reverseStatus(t *testing.T, client *http.Client) statusRepo {
	t.Helper()
	resp, err := client.Get("https://localhost:3000/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Repos []struct {
			Name string `json:"name"`
			statusRepo
		} `json:"repos"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/status.json: %d, %v", resp.StatusCode, err)
	}
	for _, r := range doc.Repos {
		if r.Name == "rir" {
			return r.statusRepo
		}
	}
	t.Fatalf("/status.json has no repository rir")
	return statusRepo{}
}

// originPaths returns how many requests for path the origin answered.
func originPaths(t *testing.T, o *rp.Origin, path string) int {
	t.Helper()
	reqs, err := o.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return len(slices.DeleteFunc(reqs, func(r rp.Request) bool { return r.Path != path }))
}

// writeFile replaces p with b atomically: a server reading it sees the
// old or the new file.
func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// flipBase64 returns a copy of the XML snapshot or delta b with one
// character of the first object's base64 changed: well-formed, of the
// same size, with another hash.
func flipBase64(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte("<publish "))
	if i < 0 {
		t.Fatal("no publish element")
	}
	out := bytes.Clone(b)
	for j := i + bytes.IndexByte(b[i:], '>') + 1; j < len(out); j++ {
		switch c := out[j]; {
		case c == 'A':
			out[j] = 'B'
			return out
		case c >= 'B' && c <= 'Z':
			out[j] = 'A'
			return out
		}
	}
	t.Fatal("no base64 content")
	return nil
}
