package rpki

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests hand a repository built by this package to the real relying
// parties, Debian's rpki-client 8.2 and fort-validator 1.5.4, fully offline:
// each RP "rsyncs" through a tiny shell script that copies from a local
// directory. They skip when the RP is not installed, and fail then if CI is
// set.

// wantVRPs are the VRPs of the ROA of buildTestRepo, as "AS,prefix,maxlen".
var wantVRPs = []string{
	"AS64496,10.1.0.0/16,24",
	"AS64496,10.2.0.0/23,23",
	"AS64496,2001:db8:1::/48,56",
}

func lookRP(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (apt-get install rpki-client fort-validator): %v", name, err)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// writeRepoDir writes the repository under a fresh world-readable directory
// (rpki-client run as root drops to its own user) with the fake rsync
// script, and returns the directory.
func writeRepoDir(t *testing.T, r *testRepo) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpki-accept-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	for uri, der := range r.Objects {
		write(filepath.Join("src", strings.TrimPrefix(uri, "rsync://")), der, 0o644)
	}
	write("tal/test.tal", r.TAL, 0o644)
	// The fake rsync takes the remote URI and the local target as its last
	// two arguments, like both RPs pass them.
	script := `#!/bin/sh
for a; do :; done
dst="$a"
eval src=\${$(($#-1))}
path="` + dir + `/src/${src#rsync://}"
if [ -d "$path" ]; then mkdir -p "$dst" && cp -r "$path"/. "$dst"/
elif [ -d "$dst" ] || [ "${dst%/}" != "$dst" ]; then mkdir -p "$dst" && cp "$path" "$dst"
else mkdir -p "$(dirname "$dst")" && cp "$path" "$dst"; fi
`
	write("fakersync", []byte(script), 0o755)
	return dir
}

// mkdirFor makes a directory writable by user (when running as root).
func mkdirFor(t *testing.T, dir, user string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 || user == "" {
		return
	}
	u, err := lookupUser(user)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("running as root without user %s (CI is set): %v", user, err)
		}
		t.Skipf("running as root without user %s: %v", user, err)
	}
	if err := os.Chown(dir, u[0], u[1]); err != nil {
		t.Fatal(err)
	}
}

func lookupUser(name string) ([2]int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return [2]int{}, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return [2]int{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	return [2]int{uid, gid}, err
}

func TestRPKIClientAccepts(t *testing.T) {
	bin := lookRP(t, "rpki-client")
	dir := writeRepoDir(t, buildTestRepo(t, time.Now()))
	cache, out := filepath.Join(dir, "cache"), filepath.Join(dir, "out")
	mkdirFor(t, cache, "_rpki-client")
	mkdirFor(t, out, "_rpki-client")

	cmd := exec.Command(bin, "-R", "-v", "-j", "-c", "-s", "60", "-e", filepath.Join(dir, "fakersync"),
		"-t", filepath.Join(dir, "tal/test.tal"), "-d", cache, out)
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rpki-client: %v\n%s", err, log)
	}
	raw, err := os.ReadFile(filepath.Join(out, "json"))
	if err != nil {
		t.Fatalf("rpki-client wrote no json: %v\n%s", err, log)
	}
	var got struct {
		Metadata map[string]any `json:"metadata"`
		ROAs     []struct {
			ASN       uint32 `json:"asn"`
			Prefix    string `json:"prefix"`
			MaxLength int    `json:"maxLength"`
		} `json:"roas"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode rpki-client json: %v", err)
	}
	for _, c := range []struct {
		key  string
		want float64
	}{
		{"roas", 1}, {"failedroas", 0}, {"invalidroas", 0},
		{"aspas", 1}, {"failedaspas", 0}, {"invalidaspas", 0},
		{"certificates", 2}, {"invalidcertificates", 0},
		{"tals", 1}, {"invalidtals", 0},
		{"manifests", 2}, {"failedmanifests", 0}, {"stalemanifests", 0},
		{"crls", 2}, {"vrps", 3}, {"vaps", 3},
	} {
		t.Run(c.key, func(t *testing.T) {
			if v, ok := got.Metadata[c.key].(float64); !ok || v != c.want {
				t.Errorf("got %s %v, want %v\n%s", c.key, got.Metadata[c.key], c.want, log)
			}
		})
	}
	var vrps []string
	for _, v := range got.ROAs {
		vrps = append(vrps, fmt.Sprintf("AS%d,%s,%d", v.ASN, v.Prefix, v.MaxLength))
	}
	slices.Sort(vrps)
	if !slices.Equal(vrps, wantVRPs) {
		t.Errorf("got VRPs %q, want %q", vrps, wantVRPs)
	}

	// rpki-client -f validates single objects against the cache just filled.
	for _, uri := range []string{"ta/ca.cer", "ta/ta.mft", "ca/ca.mft", "ca/AS64496.roa", "ca/AS64497.asa"} {
		t.Run("file "+uri, func(t *testing.T) {
			f := filepath.Join(dir, "src/localhost/repo", uri)
			out, err := exec.Command(bin, "-t", filepath.Join(dir, "tal/test.tal"), "-d", cache, "-f", f).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Validation: OK") {
				t.Errorf("rpki-client -f %s: err %v, want Validation: OK\n%s", uri, err, out)
			}
		})
	}
}

func TestFortAccepts(t *testing.T) {
	bin := lookRP(t, "fort")
	dir := writeRepoDir(t, buildTestRepo(t, time.Now()))
	cache := filepath.Join(dir, "fcache")
	mkdirFor(t, cache, "")
	conf := fmt.Sprintf(`{"rsync": {"program": %q, "arguments-recursive": ["$REMOTE", "$LOCAL"], "arguments-flat": ["$REMOTE", "$LOCAL"]}}`,
		filepath.Join(dir, "fakersync"))
	if err := os.WriteFile(filepath.Join(dir, "fort.json"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "vrps.csv")
	cmd := exec.Command(bin, "--configuration-file="+filepath.Join(dir, "fort.json"), "--mode=standalone",
		"--tal="+filepath.Join(dir, "tal"), "--local-repository="+cache, "--http.enabled=false",
		"--output.roa="+csv, "--output.format=csv", "--log.level=warning",
		"--validation-log.enabled=true", "--validation-log.level=warning")
	log, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fort: %v\n%s", err, log)
	}
	if strings.Contains(string(log), "[Validation]") {
		t.Errorf("fort logged validation warnings:\n%s", log)
	}
	raw, err := os.ReadFile(csv)
	if err != nil {
		t.Fatalf("fort wrote no VRPs: %v\n%s", err, log)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	vrps := slices.Sorted(slices.Values(lines[1:]))
	if !slices.Equal(vrps, wantVRPs) {
		t.Errorf("got VRPs %q, want %q\n%s", vrps, wantVRPs, log)
	}
}
