package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestSyncProfiles is a measurement run on demand: with
// RRDP_E2E_PROFILES_DIR=DIR it serves each repository DIR/NAME that
// `rrdp-proxy gen` wrote (NAME from RRDP_E2E_PROFILES, by default
// paper-1ca, paper-10kca and large) with nginx, in place and unchanged,
// through a core node, runs `rrdp-proxy sync` from the core's
// notification.xml and from its notification.bin, and compares the two
// trees file by file. It logs the file counts, bytes and times.
// RRDP_E2E_RUNS sets the number of sync pairs (2).
func TestSyncProfiles(t *testing.T) {
	root := os.Getenv("RRDP_E2E_PROFILES_DIR")
	if root == "" {
		t.Skip("set RRDP_E2E_PROFILES_DIR to a directory of repositories made by rrdp-proxy gen")
	}
	rp.Require(t, "nginx")
	names := []string{"paper-1ca", "paper-10kca", "large"}
	if s := os.Getenv("RRDP_E2E_PROFILES"); s != "" {
		names = strings.Split(s, ",")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(root, name)
			if _, err := os.Stat(filepath.Join(src, repotest.NotificationPath)); err != nil {
				t.Skipf("no repository: %v", err)
			}
			syncProfile(t, src)
		})
	}
}

func syncProfile(t *testing.T, src string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	public := talBase(t, filepath.Join(src, repotest.TALPath))
	notif := filepath.Join(src, repotest.NotificationPath)
	f, err := os.Open(notif)
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := rrdpxml.DecodeNotification(bufio.NewReader(f), rrdpxml.Limits{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// nginx serves the directory in place, through links.
	view := t.TempDir()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: view, PKI: pki, NoIPv6: true, Nginx: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	originView(t, src, view, public, origin.URL())
	lns, err := rp.Listen(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// syncBoth reads the core's notification.xml, which names the origin's
	// internal URIs when the core is transparent: XML of its own (see
	// nodeConfig.regenerate).
	core := startNode(t, nodeConfig{
		name: "core", follow: origin.URL() + "rrdp/notification.xml",
		public: fmt.Sprintf("https://localhost:%d/", lns[0].Addr().(*net.TCPAddr).Port),
		lns:    lns, pki: pki, regenerate: true,
	})
	core.waitState(n.SessionID, n.Serial, 50*time.Minute)
	t.Logf("core: serial %d in %v; snapshot %s", n.Serial, time.Since(start).Round(time.Millisecond), snapshotSizes(core.follower.Head()))
	// Twice by default (RRDP_E2E_RUNS), in both orders, for a baseline
	// within the run.
	runs := 2
	if s := os.Getenv("RRDP_E2E_RUNS"); s != "" {
		var err error
		if runs, err = strconv.Atoi(s); err != nil || runs < 1 {
			t.Fatalf("RRDP_E2E_RUNS=%q: want a positive number", s)
		}
	}
	for i := range runs {
		sum := syncBoth(t, ctx, pki, core, t.TempDir(), fmt.Sprintf("%s, run %d", filepath.Base(src), i+1), i%2 == 1)
		if sum.files == 0 {
			t.Error("empty trees")
		}
		if t.Failed() {
			break
		}
	}
}

// talBase returns the base URL of a repository from its TAL's https URI
// of the TA certificate.
func talBase(t *testing.T, tal string) string {
	b, err := os.ReadFile(tal)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if u, ok := strings.CutSuffix(strings.TrimSpace(l), repotest.TACertPath); ok && strings.HasPrefix(u, "https://") {
			return u
		}
	}
	t.Fatalf("%s names no https URI of %s", tal, repotest.TACertPath)
	return ""
}

// snapshotSizes describes the snapshot files of h.
func snapshotSizes(h *follow.Head) string {
	var parts []string
	for _, f := range h.Files {
		if f.Kind != rrdpxml.KindSnapshot || !f.Expires.IsZero() {
			continue
		}
		name := "xml"
		if f.Format == irpki.FormatBin {
			name = "bin"
		}
		if f.Gzip {
			name += "+gzip"
		}
		parts = append(parts, fmt.Sprintf("%s %d bytes", name, f.Size))
	}
	return strings.Join(parts, ", ")
}
