package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestCompactKrill runs the compact chain on the real Krill set at its
// time: keygen, compact on the tree rrdp-proxy sync wrote, any HTTPS server
// for the output, sync --trust: the VRPs must be rpki-client 8.2's, CSV
// byte for byte; a wrong trust file and a truncated notification are
// rejected with the previous VRPs kept.
func TestCompactKrill(t *testing.T) {
	tree, good, _ := krillSyncedTree(t)
	keys := t.TempDir()
	if code, _, stderr := runCLI(t, "keygen", "--out", keys); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(filepath.Join(keys, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", fi.Mode().Perm())
	}
	if code, _, stderr := runCLI(t, "keygen", "--out", keys); code != 1 || !strings.Contains(stderr, "exists") {
		t.Errorf("keygen over an existing key: exit %d: %s", code, stderr)
	}
	out := t.TempDir()
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	const at = krillTime
	code, stdout, stderr := runCLI(t, "compact", "--tal", filepath.Join(good, "ta.tal"), "--key", filepath.Join(keys, "key.pem"), "--time", at, tree, out)
	if code != 0 {
		t.Fatalf("compact: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "serial 1: 12 CAs (0 failing, left out), 100 VRPs") {
		t.Errorf("compact: %s", stdout)
	}
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: out, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	url := o.URL() + "compact/notification.bin"
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	sync := func(trust string, extra ...string) (int, string, string) {
		return runCLI(t, append([]string{"sync", "--once", "--ca-file", pki.CAFile, "--trust", trust, "--time", at, "--vrps", vrps}, append(extra, url)...)...)
	}
	code, stdout, stderr = sync(filepath.Join(keys, "key.pub"), "--tal", filepath.Join(good, "ta.tal"))
	if code != 0 {
		t.Fatalf("sync --trust: exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(realdata.Path(t, "krill-sync", "oracle"), "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(vrps)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("CSV differs from rpki-client's:\ngot:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(stdout, "serial 1 (from the snapshot): 100 VRPs") {
		t.Errorf("sync: %s", stdout)
	}
	// Again: unchanged, from the state kept.
	if code, stdout, stderr = sync(filepath.Join(keys, "key.pub")); code != 0 || !strings.Contains(stdout, "(unchanged)") {
		t.Errorf("second sync: exit %d: %s%s", code, stdout, stderr)
	}

	t.Run("json", func(t *testing.T) {
		jsonOut := filepath.Join(t.TempDir(), "vrps.json")
		code, _, stderr := runCLI(t, "sync", "--once", "--ca-file", pki.CAFile, "--trust", filepath.Join(keys, "key.pub"), "--time", at, "--json", "--vrps", jsonOut, url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got, err := os.ReadFile(jsonOut)
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, err := os.ReadFile(filepath.Join(realdata.Path(t, "krill-sync", "oracle"), "rpki-client-8.2.json"))
		if err != nil {
			t.Fatal(err)
		}
		// The VRPs and ASPAs, not the run's counters.
		body := regexp.MustCompile(`(?s)"roas": \[.*`)
		if g, w := body.Find(got), body.Find(wantJSON); !bytes.Equal(g, w) {
			t.Errorf("JSON VRPs differ from rpki-client's:\ngot:\n%s\nwant:\n%s", g, w)
		}
	})

	// Before "delta", which changes the tree.
	t.Run("lean", func(t *testing.T) { compactLean(t, tree, good, filepath.Join(keys, "key.pem"), pki, want) })
	t.Run("rollover", func(t *testing.T) { compactRollover(t, tree, good, keys, pki) })

	t.Run("delta", func(t *testing.T) {
		// The producer again on the same tree: unchanged.
		code, stdout, stderr := runCLI(t, "compact", "--tal", filepath.Join(good, "ta.tal"), "--key", filepath.Join(keys, "key.pem"), "--time", at, tree, out)
		if code != 0 || !strings.Contains(stdout, "serial 1, unchanged") {
			t.Fatalf("compact again: exit %d: %s%s", code, stdout, stderr)
		}
		// A ROA goes missing: its CA's manifest fails, the CA is left
		// out, serial 2 has a delta, and the client applies it.
		var roa string
		filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
			if err == nil && roa == "" && strings.HasSuffix(p, ".roa") {
				roa = p
			}
			return nil
		})
		if roa == "" {
			t.Fatal("no ROA in the tree")
		}
		if err := os.Remove(roa); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr = runCLI(t, "compact", "--tal", filepath.Join(good, "ta.tal"), "--key", filepath.Join(keys, "key.pem"), "--time", at, tree, out)
		if code != 0 || !strings.Contains(stdout, "serial 2: 11 CAs (1 failing, left out)") || !strings.Contains(stdout, "delta.bin") {
			t.Fatalf("compact after a change: exit %d: %s%s", code, stdout, stderr)
		}
		code, stdout, stderr = sync(filepath.Join(keys, "key.pub"))
		if code != 0 || !strings.Contains(stdout, "serial 2 (1 deltas)") {
			t.Fatalf("sync after a change: exit %d: %s%s", code, stdout, stderr)
		}
		_, want, _ := runCLI(t, "validate", "--tal", filepath.Join(good, "ta.tal"), "--time", at, tree)
		if got, err := os.ReadFile(vrps); err != nil || string(got) != want || len(want) == 0 {
			t.Errorf("after the delta the CSV differs from validate's on the same tree (%v):\ngot:\n%s\nwant:\n%s", err, got, want)
		}
	})

	other := t.TempDir()
	if code, _, stderr := runCLI(t, "keygen", "--out", other); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	for _, tc := range []struct {
		name, trust string
		tamper      func()
		want        string
	}{
		{"another key", filepath.Join(other, "key.pub"), func() {}, "notification: bad signature: signed by key"},
		{"truncated notification", filepath.Join(keys, "key.pub"), func() {
			n := filepath.Join(out, "compact", "notification.bin")
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(n, b[:len(b)-20], 0o644); err != nil {
				t.Fatal(err)
			}
		}, "malformed: notification"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(vrps)
			if err != nil {
				t.Fatal(err)
			}
			tc.tamper()
			code, _, stderr := sync(tc.trust)
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, url) || !strings.Contains(stderr, "previous VRPs") {
				t.Errorf("exit %d, want 1 and %q with the URL: %s", code, tc.want, stderr)
			}
			if after, err := os.ReadFile(vrps); err != nil || !bytes.Equal(after, before) {
				t.Errorf("the previous VRPs did not stay (%v)", err)
			}
		})
	}
}
