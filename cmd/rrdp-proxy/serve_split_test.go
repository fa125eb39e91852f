package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestServeCompactSplit runs serve with [validate] and [compact] in front
// of the two RRDP repositories of a split tree, publishing a compact form
// per repository over HTTPS (tls_listen), and follows both with one compact
// client: its VRPs are the generator's expected-vrps.csv at the first
// serial and after a serial in each repository, each publication
// advancing by deltas. The delegated CAs' groups are in the second
// repository's publication, their issuers' in the first's.
func TestServeCompactSplit(t *testing.T) {
	s := newSplitCompact(t)
	tals := t.TempDir()
	for _, f := range []string{repotest.TALPath, repotest.TACertPath} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tals, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := tln.Addr().String()
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	write := func(addr string) {
		var b strings.Builder
		fmt.Fprintf(&b, "[server]\nlisten = [%q]\ntls_listen = [%q]\ntls_cert = %q\ntls_key = %q\nmirror_base = \"https://%s/\"\n\n", addr, tlsAddr, s.pki.CertFile, s.pki.KeyFile, tlsAddr)
		fmt.Fprintf(&b, "[cache]\nmemory = \"64MiB\"\n\n[validate]\ntals = [%q]\ninterval = \"1h\"\n\n[compact]\nkey = %q\n\n", filepath.Join(tals, filepath.Base(repotest.TALPath)), filepath.Join(s.keys, "key.pem"))
		for i, n := range s.notify {
			fmt.Fprintf(&b, "[[repository]]\nname = \"r%d\"\norigin = %q\nmode = \"mirror\"\nca_file = %q\npoll_interval = \"1s\"\nmax_backoff = \"1s\"\nformats = [\"xml\", \"bin\", \"compact\"]\n\n", i, n, s.pki.CAFile)
		}
		writeAtomic(t, file, []byte(b.String()))
	}
	run := serveWith(t, file, serveOptions{Listeners: map[string]net.Listener{tlsAddr: tln}}, write)
	var urls []string
	for _, o := range s.xml {
		urls = append(urls, fmt.Sprintf("https://%s/localhost:%d/rrdp/%s", tlsAddr, o.Port(), compact.NotificationName))
	}
	vrps := filepath.Join(t.TempDir(), "vrps.csv")
	var logs []string
	follow := func(step string) {
		t.Helper()
		want, err := rp.ReadVRPCSV(filepath.Join(s.dir, repotest.VRPPath))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, step+": the compact client on both publications gets the generator's VRPs", run.log, func() bool {
			code, stdout, stderr, csv := s.client(vrps, urls...)
			logs = append(logs, stdout+stderr)
			if code != 0 {
				return false
			}
			got, err := rpki.ParseVRPCSV([]byte(csv))
			return err == nil && rpki.DiffVRPs(got, want, 10) == "" && !strings.Contains(stderr, "left out")
		})
		t.Logf("%s: %s", step, logs[len(logs)-1])
	}
	follow("serial 1")
	logs = nil
	s.gen("--advance", "1")
	follow("serial 2")
	for _, u := range urls {
		deltas := false
		for _, l := range logs {
			deltas = deltas || strings.Contains(l, u+": session ") && strings.Contains(l, " deltas)")
		}
		if !deltas {
			t.Errorf("serial 2: %s did not advance by deltas:\n%s", u, strings.Join(logs, "\n"))
		}
	}
}
