package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestSyncUnit runs systemd-analyze verify on rrdp-proxy-sync.service and
// its timer, with the executables pointed at a freshly built rrdp-proxy and
// at deploy/rpki-mirror-cache (verify checks that they exist), and
// requires silence; a broken copy must make it speak. The repositories the
// unit syncs are the mirror URLs that `rrdp-proxy config check` prints for
// examples/mirror.toml, the IXP's mirror.
func TestSyncUnit(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("rrdp-proxy-sync.service")
	if err != nil {
		t.Fatal(err)
	}
	timer, err := os.ReadFile("rrdp-proxy-sync.timer")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		"Type=oneshot", "User=_rpki-client", "StateDirectory=rpki-mirror", "UMask=0022",
		"Wants=rpki-client.service", "Before=rpki-client.service",
		`echo 'OPTIONS="-n -d /var/lib/rpki-mirror/cache"' > /etc/default/rpki-client`,
		"ExecStart=/usr/bin/rpki-mirror-cache /var/lib/rpki-mirror/repos /var/lib/rpki-mirror/cache ",
		"ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rrdp-proxy-sync.service lacks %q", strings.TrimSpace(want))
		}
	}
	if !strings.Contains(string(timer), "OnUnitActiveSec=10min\n") {
		t.Errorf("rrdp-proxy-sync.timer does not run every 10 minutes, as the unit and the README say")
	}

	// The sync lines follow the mirror's notification.bin URLs, every one.
	syncLine := regexp.MustCompile(`(?m)^ExecStart=-/usr/bin/rrdp-proxy sync --once --out /var/lib/rpki-mirror/repos/(\S+) (\S+)$`)
	var synced []string
	for _, m := range syncLine.FindAllStringSubmatch(text, -1) {
		synced = append(synced, m[1]+" "+m[2])
	}
	out, err := run(t, ".", nil, binary(t), "config", "check", "examples/mirror.toml")
	if err != nil {
		t.Fatalf("config check examples/mirror.toml: %v\n%s", err, out)
	}
	var served []string
	name := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "(mirror)" {
			name = f[0]
		}
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "serves "); ok && strings.HasSuffix(u, "/notification.bin") {
			served = append(served, name+" "+u)
		}
	}
	if len(served) == 0 || !slices.Equal(synced, served) {
		t.Errorf("the unit syncs\n  %s\nthe mirror of examples/mirror.toml serves\n  %s", strings.Join(synced, "\n  "), strings.Join(served, "\n  "))
	}

	script, err := filepath.Abs("rpki-mirror-cache")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(script); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("rpki-mirror-cache is not an executable file: %v", err)
	}
	dir := t.TempDir()
	local := strings.ReplaceAll(text, "/usr/bin/rrdp-proxy ", binary(t)+" ")
	local = mustReplace(t, local, "/usr/bin/rpki-mirror-cache ", script+" ")
	good := filepath.Join(dir, "rrdp-proxy-sync.service")
	if err := os.WriteFile(good, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	goodTimer := filepath.Join(dir, "rrdp-proxy-sync.timer")
	if err := os.WriteFile(goodTimer, timer, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, dir, nil, sa, "verify", good, goodTimer)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "broken.service")
	broken := mustReplace(t, local, "Type=oneshot", "Type=oneshoot\nStateDirektory=x")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, dir, nil, sa, "verify", bad)
	if !strings.Contains(string(out), "oneshoot") || !strings.Contains(string(out), "StateDirektory") {
		t.Errorf("systemd-analyze verify did not report the broken unit's mistakes:\n%s", out)
	}
}
