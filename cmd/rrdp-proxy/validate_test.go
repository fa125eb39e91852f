package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// krillSyncedTree serves the real Krill set at https://localhost:3000/ (the
// port its URIs name) for the rest of the test, syncs it with rrdp-proxy
// sync --once and returns the tree, the data set's directory and the CA
// file of the origin.
func krillSyncedTree(t *testing.T) (tree, good, caFile string) {
	t.Helper()
	good = realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	served := t.TempDir()
	const session = "cd0c701d-ff09-4e95-8f2a-fa24de875fb5"
	for link, target := range map[string]string{
		"rrdp/notification.xml": "rrdp/notification.xml",
		"rrdp/" + session:       "rrdp/" + session,
		"ta/ta.cer":             "ta.cer",
	} {
		p := filepath.Join(served, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(good, target), p); err != nil {
			t.Fatal(err)
		}
	}
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: served, PKI: pki, Port: 3000, PortWait: 30 * time.Second, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	tree = filepath.Join(t.TempDir(), "tree")
	code, _, stderr := runCLI(t, "sync", "--once", "--ca-file", pki.CAFile, "--out", tree, "https://localhost:3000/rrdp/notification.xml")
	if code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	return tree, good, pki.CAFile
}

// TestValidateKrillTree validates what rrdp-proxy sync wrote of the real
// Krill set: the CSV must be rpki-client 8.2's byte for byte, the JSON too
// but for the lines that describe the machine and the run.
func TestValidateKrillTree(t *testing.T) {
	tree, good, caFile := krillSyncedTree(t)
	oracle := realdata.Path(t, "krill-sync", "oracle")
	tal := filepath.Join(good, "ta.tal")
	code, stdout, stderr := runCLI(t, "validate", "--tal", tal, "--time", "2023-02-14T00:00:00Z", tree)
	if code != 0 {
		t.Fatalf("validate: exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(filepath.Join(oracle, "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("CSV differs from rpki-client's:\ngot:\n%s\nwant:\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "100 VRPs (100 unique)") || !strings.Contains(stderr, "12 CAs (0 failing)") {
		t.Errorf("summary: %s", stderr)
	}

	code, stdout, stderr = runCLI(t, "validate", "--json", "--tal", tal, "--time", "2023-02-14T00:00:00Z", tree)
	if code != 0 {
		t.Fatalf("validate --json: exit %d: %s", code, stderr)
	}
	wantJSON, err := os.ReadFile(filepath.Join(oracle, "rpki-client-8.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	mask := regexp.MustCompile(`(?m)^\t\t"(buildmachine|buildtime|elapsedtime|usertime|systemtime|cachedir_del_dirs)": .*\n|^\t\t\t"/.*\.tal"\n`)
	if got, w := mask.ReplaceAll([]byte(stdout), nil), mask.ReplaceAll(wantJSON, nil); !bytes.Equal(got, w) {
		t.Errorf("JSON differs from rpki-client's (machine lines masked):\ngot:\n%s\nwant:\n%s", got, w)
	}

	// A TAL alone: the TA certificate is fetched from its https URI,
	// through the origin's private CA.
	alone := filepath.Join(t.TempDir(), "ta.tal")
	if err := os.WriteFile(alone, []byte(strings.Replace(readString(t, tal), "rsync://localhost/ta/ta.cer\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "validate", "--ca-file", caFile, "--tal", alone, "--time", "2023-02-14T00:00:00Z", tree)
	if code != 0 || stdout != string(want) {
		t.Errorf("TA fetched over https: exit %d, CSV equal to the oracle's: %v; stderr: %s", code, stdout == string(want), stderr)
	}
	code, _, stderr = runCLI(t, "validate", "--tal", alone, "--time", "2023-02-14T00:00:00Z", tree)
	if code != 1 || !strings.Contains(stderr, "no trust anchor could be used") || !strings.Contains(stderr, "https://localhost:3000/ta/ta.cer") {
		t.Errorf("TA fetch without the origin's CA: exit %d, stderr: %s", code, stderr)
	}

	// A year later everything has expired: no VRPs, and stderr says
	// which CA failed and why.
	code, stdout, stderr = runCLI(t, "validate", "--tal", tal, "--time", "2024-02-14T00:00:00Z", tree)
	if code != 0 {
		t.Fatalf("validate a year later: exit %d: %s", code, stderr)
	}
	if stdout != "ASN,IP Prefix,Max Length,Trust Anchor,Expires\n" {
		t.Errorf("a year later: got VRPs:\n%s", stdout)
	}
	if !strings.Contains(stderr, "CA rsync://localhost/ta/ta.cer") && !strings.Contains(stderr, "https://localhost:3000/ta/ta.cer") {
		t.Errorf("a year later: the failing TA is not reported:\n%s", stderr)
	}
	if !strings.Contains(stderr, "stale") {
		t.Errorf("a year later: no stale manifest reported:\n%s", stderr)
	}
}

func readString(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestValidateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "tree"},
		{"validate", "--tal", "x.tal"},
		{"validate", "--json", "--csv", "--tal", "x.tal", "tree"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tal")
	os.WriteFile(bad, []byte("ftp://example.net/ta.cer\n\nAAAA\n"), 0o644)
	code, _, stderr := runCLI(t, "validate", "--tal", bad, dir)
	if code != 1 || !strings.Contains(stderr, "not an rsync or https URI") {
		t.Errorf("bad TAL: exit %d, stderr %q", code, stderr)
	}
}
