package deploy_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/tlsca"
)

// publicHost is the host name of the examples' mirror_base.
const publicHost = "rpki-mirror.example.net"

// TestExamplesServeHTTPS starts the built binary on the container and
// single-host examples, as written except for what only this machine
// decides: the listen ports (free loopback ones), the state directory,
// and for single.toml the credential paths the systemd drop-in provides.
// The certificate is generated for the examples' public host name at the
// paths the examples name. A TLS client that trusts only that CA reaches
// the node by that name; the notifications it names are https URLs on it.
// The origins of the examples are not reachable here, so no repository
// becomes ready: /readyz stays 503, which the test also checks.
func TestExamplesServeHTTPS(t *testing.T) {
	bin := binary(t)
	for _, c := range []struct {
		file     string
		tlsAddr  string // as written
		httpAddr string
		base     string // mirror_base as written
		certs    func(dir string) (cert, key string)
	}{
		{
			file: "container.toml", tlsAddr: `":8443"`, httpAddr: `":8080"`, base: "https://" + publicHost + "/",
			// Relative names, from the configuration's directory.
			certs: func(dir string) (string, string) {
				return filepath.Join(dir, "tls", "fullchain.pem"), filepath.Join(dir, "tls", "privkey.pem")
			},
		},
		{
			file: "single.toml", tlsAddr: `":8443"`, httpAddr: `"127.0.0.1:8080"`, base: "https://" + publicHost + ":8443/",
			certs: func(dir string) (string, string) {
				return filepath.Join(dir, "credentials", "tls.crt"), filepath.Join(dir, "credentials", "tls.key")
			},
		},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("examples", c.file))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cert, key := c.certs(dir)
			pki := writePKI(t, dir, cert, key)
			tlsPort, httpPort := freePort(t), freePort(t)
			s := string(raw)
			s = mustReplace(t, s, "tls_listen = ["+c.tlsAddr+"]", fmt.Sprintf(`tls_listen = ["127.0.0.1:%d"]`, tlsPort))
			s = mustReplace(t, s, "\nlisten = ["+c.httpAddr+"]", fmt.Sprintf(`%slisten = ["127.0.0.1:%d"]`, "\n", httpPort))
			s = mustReplace(t, s, `state_dir = "/var/lib/rrdp-proxy"`, fmt.Sprintf("state_dir = %q", filepath.Join(dir, "state")))
			if !strings.Contains(s, `mirror_base = "`+c.base+`"`) {
				t.Fatalf("%s: mirror_base is not %s", c.file, c.base)
			}
			if c.file == "single.toml" {
				s = mustReplace(t, s, `"/run/credentials/rrdp-proxy.service/tls.crt"`, fmt.Sprintf("%q", cert))
				s = mustReplace(t, s, `"/run/credentials/rrdp-proxy.service/tls.key"`, fmt.Sprintf("%q", key))
			}
			conf := filepath.Join(dir, "rrdp-proxy.toml")
			if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "config", "check", conf).CombinedOutput(); err != nil {
				t.Fatalf("config check: %v\n%s", err, out)
			}

			cmd := exec.Command(bin, "serve", "--config", conf)
			var log strings.Builder
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			stopped := false
			defer func() {
				if !stopped {
					cmd.Process.Kill()
					<-done
				}
			}()

			// The client dials the loopback port for the public name.
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pki.ClientTLS().RootCAs, ServerName: publicHost, MinVersion: tls.VersionTLS12},
			}}
			tlsBase := fmt.Sprintf("https://127.0.0.1:%d", tlsPort)
			waitOK(t, client, tlsBase+"/healthz", done, &log)
			body := mustGet(t, client, tlsBase+"/index.json", http.StatusOK)
			var index struct {
				Repos []struct {
					Name            string `json:"name"`
					NotificationXML string `json:"notification_xml"`
				} `json:"repositories"`
			}
			if err := json.Unmarshal(body, &index); err != nil || len(index.Repos) == 0 {
				t.Fatalf("index.json: %v\n%s", err, body)
			}
			for _, r := range index.Repos {
				if !strings.HasPrefix(r.NotificationXML, c.base) {
					t.Errorf("%s: notification %q, want it under %s", r.Name, r.NotificationXML, c.base)
				}
			}
			// The operator pages on the plain listener. The origins are out
			// of reach: once their first polls failed the node is ready
			// (it serves what it has), /readyz names them, and each
			// repository's own check is 503.
			plain := &http.Client{Timeout: 5 * time.Second}
			mustGet(t, plain, fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort), http.StatusOK)
			ready := waitGet(t, plain, fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort), http.StatusOK)
			if !strings.Contains(ready, "origin failing") {
				t.Errorf("readyz with the origins out of reach: got %q, want them named as failing", ready)
			}
			for _, r := range index.Repos {
				mustGet(t, plain, fmt.Sprintf("http://127.0.0.1:%d/readyz?repo=%s", httpPort, r.Name), http.StatusServiceUnavailable)
			}
			// A client that does not trust the CA is refused.
			if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(tlsBase + "/healthz"); err == nil {
				t.Error("a client trusting the system roots only got through")
			}

			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				stopped = true
				if err != nil {
					t.Errorf("serve after SIGTERM: %v\n%s", err, log.String())
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("serve did not stop within 60s of SIGTERM\n%s", log.String())
			}
		})
	}
}

// writePKI makes a CA and a certificate for publicHost, and puts the
// certificate chain and key at the paths given.
func writePKI(t *testing.T, dir, cert, key string) *tlsca.PKI {
	t.Helper()
	pki, err := tlsca.New(t.TempDir(), tlsca.Config{Hosts: []string{publicHost}})
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{pki.CertFile: cert, pki.KeyFile: key} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pki
}

// waitOK polls url until it answers 200, failing when the process ends
// or a minute passes.
func waitOK(t *testing.T, c *http.Client, url string, done <-chan error, log fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case err := <-done:
			t.Fatalf("serve exited (%v) before %s answered\n%s", err, url, log)
		case <-ctx.Done():
			t.Fatalf("%s: %v\n%s", url, last, log)
		case <-tick.C:
		}
	}
}

// mustGet fetches url and checks the status.
func mustGet(t *testing.T, c *http.Client, url string, want int) []byte {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d\n%s", url, resp.StatusCode, want, body)
	}
	return body
}

// TestSystemdTLSDropIn verifies the unit with the drop-in for TLS applied
// (its [Service] lines appended, as systemd merges them) and checks that
// the credentials it loads are the files single.toml reads.
func TestSystemdTLSDropIn(t *testing.T) {
	sa := need(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("rrdp-proxy.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile(filepath.Join("rrdp-proxy.service.d", "tls.conf"))
	if err != nil {
		t.Fatal(err)
	}
	single, err := os.ReadFile(filepath.Join("examples", "single.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key"} {
		if !strings.Contains(string(dropIn), "LoadCredential="+name+":/etc/rrdp-proxy/tls/") {
			t.Errorf("the drop-in loads no credential %s from /etc/rrdp-proxy/tls/", name)
		}
		if !strings.Contains(string(single), `"/run/credentials/rrdp-proxy.service/`+name+`"`) {
			t.Errorf("single.toml does not read the credential %s", name)
		}
	}
	dir := t.TempDir()
	merged := mustReplace(t, string(unit), execStart, "ExecStart="+binary(t)+" serve --config /etc/rrdp-proxy/rrdp-proxy.toml") + "\n" + string(dropIn)
	file := filepath.Join(dir, "rrdp-proxy.service")
	if err := os.WriteFile(file, []byte(merged), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, dir, nil, sa, "verify", file); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify with the drop-in: %v\n%s", err, out)
	}
}

// waitGet polls url until it answers want (the node's first polls end
// within seconds), then returns the body; it fails after 60s.
func waitGet(t *testing.T, c *http.Client, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == want {
				return string(body)
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %d within 60s, last: %v", url, want, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
