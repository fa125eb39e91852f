package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// krillTime is the time at which the real Krill set validates.
const krillTime = "2023-02-14T00:00:00Z"

// compactServe runs compact with args on tree into a new directory, serves
// it over HTTPS and returns the notification's URL.
func compactServe(t *testing.T, pki *rp.PKI, tree, good string, args ...string) (url, out string) {
	t.Helper()
	out = t.TempDir()
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	url = compactAgain(t, pki, tree, good, out, args...)
	return url, out
}

// compactAgain runs compact with args on tree into out; the first call
// for out serves it.
func compactAgain(t *testing.T, pki *rp.PKI, tree, good, out string, args ...string) string {
	t.Helper()
	argv := append([]string{"compact", "--tal", filepath.Join(good, "ta.tal"), "--time", krillTime}, args...)
	if code, stdout, stderr := runCLI(t, append(argv, tree, out)...); code != 0 {
		t.Fatalf("compact %v: exit %d: %s%s", args, code, stdout, stderr)
	}
	if pki == nil {
		return ""
	}
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: out, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o.URL() + "compact/notification.bin"
}

// compactSync runs sync --trust on url into vrps.
func compactSync(t *testing.T, pki *rp.PKI, url, trust, vrps string, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"sync", "--once", "--ca-file", pki.CAFile, "--trust", trust, "--time", krillTime, "--vrps", vrps}, extra...)
	return runCLI(t, append(args, url)...)
}

// compactLean publishes the Krill tree with --omit-certificates: the CSV
// is rpki-client's, the snapshot smaller than with certificates, and
// sync --require-certificates refuses it.
func compactLean(t *testing.T, tree, good, key string, pki *rp.PKI, want []byte) {
	url, out := compactServe(t, pki, tree, good, "--key", key, "--omit-certificates")
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	if code, _, stderr := compactSync(t, pki, url, filepath.Join(filepath.Dir(key), "key.pub"), vrps, "--tal", filepath.Join(good, "ta.tal")); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	if got, err := os.ReadFile(vrps); err != nil || !bytes.Equal(got, want) {
		t.Errorf("CSV differs from rpki-client's (%v):\ngot:\n%s\nwant:\n%s", err, got, want)
	}
	_, full := compactServe(t, nil, tree, good, "--key", key)
	if lean, certs := snapshotSize(t, out), snapshotSize(t, full); lean >= certs {
		t.Errorf("lean snapshot %d bytes, with certificates %d: want smaller", lean, certs)
	}
	strict := filepath.Join(t.TempDir(), "vrps.csv")
	code, _, stderr := compactSync(t, pki, url, filepath.Join(filepath.Dir(key), "key.pub"), strict, "--require-certificates")
	if code != 1 || !strings.Contains(stderr, "CA certificates are required") {
		t.Errorf("sync --require-certificates: exit %d: %s", code, stderr)
	}
}

func snapshotSize(t *testing.T, out string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "snapshot.bin" {
			fi, err := d.Info()
			if err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if n == 0 {
		t.Fatalf("no snapshot.bin under %s", out)
	}
	return n
}

// compactRollover rolls the key over with compact --rollover-key, followed
// by three clients (trusting the old key, the new, both): all follow the
// overlap; once the old key is dropped the old-key client is refused,
// naming the new key, and keeps its VRPs.
func compactRollover(t *testing.T, tree, good, keys string, pki *rp.PKI) {
	next := t.TempDir()
	code, stdout, stderr := runCLI(t, "keygen", "--out", next)
	if code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	m := regexp.MustCompile(`key id ([0-9a-f]{64})`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("keygen printed no key id: %s", stdout)
	}
	newID := m[1]
	oldKey, newKey := filepath.Join(keys, "key.pem"), filepath.Join(next, "key.pem")
	oldPub, newPub := filepath.Join(keys, "key.pub"), filepath.Join(next, "key.pub")
	both := filepath.Join(t.TempDir(), "both.pub")
	var b []byte
	for _, f := range []string{oldPub, newPub} {
		x, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, x...)
	}
	if err := os.WriteFile(both, b, 0o644); err != nil {
		t.Fatal(err)
	}
	clients := []struct{ name, trust, vrps string }{
		{"old", oldPub, filepath.Join(t.TempDir(), "old.csv")},
		{"new", newPub, filepath.Join(t.TempDir(), "new.csv")},
		{"both", both, filepath.Join(t.TempDir(), "both.csv")},
	}
	var url, out string
	for i, phase := range []struct {
		name   string
		args   []string
		accept []bool
	}{
		{"the new key second", []string{"--key", oldKey, "--rollover-key", newKey}, []bool{true, true, true}},
		{"swapped", []string{"--key", newKey, "--rollover-key", oldKey}, []bool{true, true, true}},
		{"the old key dropped", []string{"--key", newKey}, []bool{false, true, true}},
	} {
		if i == 0 {
			url, out = compactServe(t, pki, tree, good, phase.args...)
		} else {
			compactAgain(t, nil, tree, good, out, phase.args...)
		}
		for j, c := range clients {
			before, _ := os.ReadFile(c.vrps)
			code, stdout, stderr := compactSync(t, pki, url, c.trust, c.vrps)
			switch {
			case phase.accept[j] && (code != 0 || !strings.Contains(stdout, "100 VRPs") || i > 0 && !strings.Contains(stdout, "(1 deltas)")):
				t.Errorf("%s: the client trusting the %s key: exit %d: %s%s", phase.name, c.name, code, stdout, stderr)
			case !phase.accept[j] && (code != 1 || !strings.Contains(stderr, "signed by key "+newID+", not a trusted key")):
				t.Errorf("%s: the client trusting the %s key: exit %d, want 1 naming key %s: %s", phase.name, c.name, code, newID, stderr)
			case !phase.accept[j]:
				if after, err := os.ReadFile(c.vrps); err != nil || !bytes.Equal(after, before) {
					t.Errorf("%s: the previous VRPs did not stay (%v)", phase.name, err)
				}
			}
		}
	}
}
