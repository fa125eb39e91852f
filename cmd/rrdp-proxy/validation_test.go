package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
)

// TestServeValidate runs serve with [validate] over two repositories, each
// under its own TA and rsync host (localhost and 127.0.0.1), with the gate on and a rule that any removed VRP
// breaks: /vrps.json on the admin listener (404 on the public one) has the
// VRPs of both; a serial of repository a that removes VRPs is held, the
// node keeps serving serial 1 and /status.json says why; rrdp-proxy release
// talks to the admin listener and the node then serves serial 2.
func TestServeValidate(t *testing.T) {
	o := newOrigins(t, "a")
	small, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	bBase := fmt.Sprintf("https://127.0.0.1:%d/b/", o.origin.Port())
	if o.repos["b"], err = repotest.Create(filepath.Join(o.dir, "b"), repotest.Config{Profile: small, Seed: 2, BaseURL: bBase}, time.Now().UTC().Truncate(time.Second), repotest.Options{KeyCache: keyCache}); err != nil {
		t.Fatal(err)
	}
	notification := map[string]string{"a": o.notification("a"), "b": bBase + "rrdp/notification.xml"}
	dir := t.TempDir()
	tals := o.tals(t, dir, "a", "b")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, admin := ln.Addr().String(), aln.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = [%q]\nadmin_listen = %q\nmirror_base = \"https://%s/\"\nlog_level = \"debug\"\n\n", addr, admin, addr)
	fmt.Fprintf(&b, "[validate]\ntals = [%q, %q]\ngate = true\nmax_vrp_loss = 0.0001\ninterval = \"1h\"\n\n", tals[0], tals[1])
	for _, name := range []string{"a", "b"} {
		fmt.Fprintf(&b, "[[repository]]\nname = %q\norigin = %q\nca_file = %q\npoll_interval = \"1s\"\nmax_backoff = \"1s\"\n\n", name, notification[name], o.ca)
	}
	file := filepath.Join(dir, "rrdp-proxy.toml")
	writeAtomic(t, file, []byte(b.String()))
	ctx, cancel := context.WithCancel(context.Background())
	log := new(syncBuffer)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{Config: file, Reload: make(chan os.Signal), Log: log, Listeners: map[string]net.Listener{addr: ln, admin: aln}})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	want := rpki.SortVRPs(append(o.repos["a"].VRPs(), o.repos["b"].VRPs()...))
	vrps := func() int {
		var doc struct {
			ROAs []json.RawMessage `json:"roas"`
		}
		code, body := get(t, "http://"+admin+"/vrps.json")
		if code != http.StatusOK || json.Unmarshal(body, &doc) != nil {
			return -1
		}
		return len(doc.ROAs)
	}
	waitFor(t, "both repositories validated", log, func() bool { return vrps() == len(want) })
	if code, _ := get(t, "http://"+addr+"/vrps.json"); code != http.StatusNotFound {
		t.Errorf("public /vrps.json: got %d, want 404 (the admin listener has it)", code)
	}
	if code, _, stderr := runCLI(t, "release", "--admin", admin, "a"); code != 1 || !strings.Contains(stderr, "no serial held") {
		t.Errorf("release with nothing held: exit %d, %q", code, stderr)
	}

	if err := o.repos["a"].Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	held := func() []string {
		var doc struct {
			Validation struct {
				Holds []struct {
					Repo   string   `json:"repo"`
					Serial uint64   `json:"serial"`
					Why    []string `json:"why"`
				} `json:"holds"`
			} `json:"validation"`
		}
		_, body := get(t, "http://"+admin+"/status.json")
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range doc.Validation.Holds {
			out = append(out, fmt.Sprintf("%s@%d: %s", h.Repo, h.Serial, strings.Join(h.Why, "; ")))
		}
		return out
	}
	waitFor(t, "serial 2 of a held", log, func() bool { return len(held()) == 1 })
	if h := held()[0]; !strings.HasPrefix(h, "a@2: removes ") {
		t.Errorf("hold: got %q, want a@2 removing VRPs", h)
	}
	checkNotifications(t, "http://"+addr+o.proxyPath("a"), 1)
	code, stdout, stderr := runCLI(t, "release", "--config", file, "a")
	if code != 0 || !strings.HasPrefix(stdout, "released a serial 2") {
		t.Fatalf("release: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	checkNotifications(t, "http://"+addr+o.proxyPath("a"), 2)
	if len(held()) != 0 {
		t.Errorf("after the release: holds %q, want none", held())
	}
	if !strings.Contains(log.String(), "validation gate: serial held") {
		t.Errorf("the hold is not logged:\n%s", log)
	}
}

// tals copies the TAL and the TA certificate of each repository of names
// into its own directory under dir and returns the TAL files.
func (o *origins) tals(t *testing.T, dir string, names ...string) []string {
	t.Helper()
	var tals []string
	for _, name := range names {
		d := filepath.Join(dir, "tals", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for from, to := range map[string]string{repotest.TALPath: name + ".tal", repotest.TACertPath: "ta.cer"} {
			b, err := os.ReadFile(filepath.Join(o.dir, name, from))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, to), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tals = append(tals, filepath.Join(d, name+".tal"))
	}
	return tals
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, log fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute\nlog:\n%s", what, log)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}
