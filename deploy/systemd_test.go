package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const execStart = "ExecStart=/usr/bin/rrdp-proxy serve --config /etc/rrdp-proxy/rrdp-proxy.toml"

// TestSystemdUnit runs systemd-analyze verify on the unit, with ExecStart
// pointing at a freshly built rrdp-proxy (verify checks the executable
// exists), and requires silence: verify exits 0 even for unknown keys and
// bad values, and only says so on stderr. A broken copy of the unit must
// make it speak, or the check proves nothing.
func TestSystemdUnit(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("rrdp-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	for _, want := range []string{
		execStart, "ExecReload=/bin/kill -HUP $MAINPID",
		"DynamicUser=yes", "StateDirectory=rrdp-proxy", "ProtectSystem=strict", "ProtectHome=yes",
		"PrivateTmp=yes", "PrivateDevices=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
		"MemoryDenyWriteExecute=yes", "LockPersonality=yes", "RestrictNamespaces=yes",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
		"ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes", "RestrictRealtime=yes",
		"RestrictSUIDSGID=yes", "UMask=0077", "LimitNOFILE=65536",
		"Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "TimeoutStopSec=40s",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	if regexp.MustCompile(`(?m)^AmbientCapabilities=\S`).MatchString(text) {
		t.Errorf("unit grants ambient capabilities, but it listens on :8080")
	}

	dir := t.TempDir()
	local := mustReplace(t, text, execStart, "ExecStart="+binary(t)+" serve --config /etc/rrdp-proxy/rrdp-proxy.toml")
	good := filepath.Join(dir, "rrdp-proxy.service")
	if err := os.WriteFile(good, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, nil, sa, "verify", good)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The exposure score of systemd's own audit, 0 (locked down) to 10:
	// the unit scores 1.2 today; fail when a protection goes missing.
	out, err = run(t, dir, nil, sa, "security", "--offline=true", "--threshold=20", good)
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, lastLines(out, 3))
	}

	bad := filepath.Join(dir, "broken.service")
	broken := mustReplace(t, local, "ProtectSystem=strict", "ProtectSystem=strickt\nProtectSystm=yes")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, dir, nil, sa, "verify", bad)
	if !strings.Contains(string(out), "ProtectSystm") || !strings.Contains(string(out), "strickt") {
		t.Errorf("systemd-analyze verify did not report the broken unit's mistakes:\n%s", out)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestStopTimeoutsAgree: serve drains for 30 s (shutdownGrace); the unit,
// the Kubernetes manifest and the compose file give it 40 s before a kill
// (10 s for the followers and the leases), and the READMEs say so.
func TestStopTimeoutsAgree(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"rrdp-proxy.service", "TimeoutStopSec=40s\n"},
		{"k8s/rrdp-proxy.yaml", "terminationGracePeriodSeconds: 40\n"},
		{"compose.yaml", "stop_grace_period: 40s\n"},
		{"README.md", "finish for up to 30 s"},
		{"../README.md", "gives downloads under way 30 s"},
		{"../cmd/rrdp-proxy/node.go", "const shutdownGrace = 30 * time.Second\n"},
		{"../cmd/rrdp-proxy/serve.go", "under way finish for up to 30s."},
	} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.want) {
			t.Errorf("%s does not say %q", c.file, strings.TrimSpace(c.want))
		}
	}
}
