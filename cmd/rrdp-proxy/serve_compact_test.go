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

// readVRPCSV reads the VRPs the compact client wrote to file, sorted.
func readVRPCSV(t *testing.T, what, file string) []rpki.VRP {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	vrps, err := rpki.ParseVRPCSV(b)
	if err != nil {
		t.Fatalf("%s: %s: %v", what, file, err)
	}
	return rpki.SortVRPs(vrps)
}

// TestServeCompact runs serve with [validate], [compact] and a repository
// whose formats list "compact", and follows it with the compact client
// (rrdp-proxy sync --trust): its VRPs equal the generator's at the first
// serial and after a serial of churn, taken as a compact delta; a
// restarted node continues the same compact session and serial.
func TestServeCompact(t *testing.T) {
	o := newOrigins(t, "a")
	dir := t.TempDir()
	tals := filepath.Join(dir, "tals")
	if err := os.MkdirAll(tals, 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{repotest.TALPath: "a.tal", repotest.TACertPath: "ta.cer"} {
		b, err := os.ReadFile(filepath.Join(o.dir, "a", from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tals, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keys := filepath.Join(dir, "keys")
	if code, _, stderr := runCLI(t, "keygen", "--out", keys); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	state := filepath.Join(dir, "state")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = [%q]\nmirror_base = \"http://%s/\"\nallow_http_base = true\n\n[cache]\nstate_dir = %q\n\n", addr, addr, state)
	fmt.Fprintf(&b, "[validate]\ntals = [%q]\ninterval = \"1h\"\n\n[compact]\nkey = %q\n\n", filepath.Join(tals, "a.tal"), filepath.Join(keys, "key.pem"))
	fmt.Fprintf(&b, "[[repository]]\nname = \"a\"\norigin = %q\nca_file = %q\npoll_interval = \"1s\"\nmax_backoff = \"1s\"\nformats = [\"xml\", \"bin\", \"compact\"]\n", o.notification("a"), o.ca)
	file := filepath.Join(dir, "rrdp-proxy.toml")
	writeAtomic(t, file, []byte(b.String()))
	start := func(ln net.Listener) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		log := new(syncBuffer)
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, serveOptions{Config: file, Reload: make(chan os.Signal), Log: log, Listeners: map[string]net.Listener{addr: ln}})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v\n%s", err, log)
			}
		}
	}
	stop := start(ln)
	defer func() { stop() }()

	notification := "http://" + addr + o.proxyPath("a") + "compact/notification.bin"
	out := filepath.Join(dir, "vrps.csv")
	syncTo := func(what string, want []rpki.VRP) string {
		t.Helper()
		var stdout string
		waitFor(t, what+": the compact client gets the generator's VRPs", new(syncBuffer), func() bool {
			if code, _ := get(t, notification); code != http.StatusOK {
				return false
			}
			var code int
			code, stdout, _ = runCLI(t, "sync", "--once", "--trust", filepath.Join(keys, "key.pub"), "--vrps", out, notification)
			if code != 0 {
				return false
			}
			return rpki.DiffVRPs(readVRPCSV(t, what, out), want, 10) == ""
		})
		return stdout
	}
	syncTo("serial 1", rpki.SortVRPs(o.repos["a"].VRPs()))
	_, first := get(t, notification)

	if err := o.repos["a"].Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	log := syncTo("serial 2", rpki.SortVRPs(o.repos["a"].VRPs()))
	if !strings.Contains(log, " deltas)") {
		t.Errorf("serial 2: the client did not apply a delta:\n%s", log)
	}
	_, second := get(t, notification)

	// A restart continues the compact publication from the state
	// directory: the same notification, byte for byte.
	stop()
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop = start(ln2)
	// Compared once the restarted node's validator has run over serial 2
	// (until then the stored head is served as it was).
	waitFor(t, "the restarted node validates serial 2 and publishes compact", new(syncBuffer), func() bool {
		var doc struct {
			Validation struct {
				Compact []struct {
					RepoSerial uint64 `json:"repo_serial"`
					Serial     uint64 `json:"serial"`
				} `json:"compact"`
			} `json:"validation"`
		}
		code, body := get(t, "http://"+addr+"/status.json")
		if code != http.StatusOK || json.Unmarshal(body, &doc) != nil || len(doc.Validation.Compact) != 1 {
			return false
		}
		c := doc.Validation.Compact[0]
		return c.RepoSerial == 2 && c.Serial > 0
	})
	if _, again := get(t, notification); string(again) != string(second) || string(again) == string(first) {
		t.Errorf("after a restart: the compact notification changed (%d bytes, was %d)", len(again), len(second))
	}
}
