package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// startServe runs a node as `rrdp-proxy serve --config FILE`, with a
// configuration equivalent to startNode's composition (poll interval 1s,
// the shortest the configuration accepts).
func startServe(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	n := newNode(t, cfg)
	// The process binds the addresses itself: release them. Another
	// process could take the port in between; the node then fails to
	// start, clearly.
	var addrs []string
	for _, ln := range cfg.lns {
		addrs = append(addrs, fmt.Sprintf("%q", ln.Addr().String()))
		ln.Close()
	}
	file := filepath.Join(t.TempDir(), cfg.name+".toml")
	conf := fmt.Sprintf(`[server]
listen = []
tls_listen = [%s]
tls_cert = %q
tls_key = %q
node = %q
log_level = "info"

[cache]
memory = "64MiB"

[[repository]]
name = %q
origin = %q
mode = "reverse"
hosts = ["localhost"]
base = %q
ca_file = %q
poll_interval = "1s"
max_backoff = "2s"
`, strings.Join(addrs, ", "), cfg.pki.CertFile, cfg.pki.KeyFile, cfg.name, cfg.name, cfg.follow, n.base, cfg.pki.CAFile)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	proc := spawnServe(t, cfg.name, file)
	log, exited := proc.log, proc.exited
	// Wait until it completes a TLS handshake.
	tlsConf := cfg.pki.ClientTLS()
	tlsConf.ServerName = "localhost"
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s: rrdp-proxy serve exited: %v\n%s", cfg.name, err, log.String())
		default:
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp4", n.addr, tlsConf)
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rrdp-proxy serve not answering on %s after 30s: %v\n%s", cfg.name, n.addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// serveProc is a running `rrdp-proxy serve`: its log and its exit.
type serveProc struct {
	log    *lockedBuffer
	exited chan error // receives Wait's error once; put it back to keep it
}

// spawnServe starts `rrdp-proxy serve --config file`; t.Cleanup sends it
// SIGTERM, expects it to exit 0 within 30s, and logs its output when the
// test failed.
func spawnServe(t *testing.T, name, file string) *serveProc {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{log: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd := exec.Command(bin, "serve", "--config", file)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.exited:
			if err != nil {
				t.Errorf("%s: rrdp-proxy serve: %v\n%s", name, err, p.log.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s: rrdp-proxy serve did not stop within 30s of SIGTERM; killed\n%s", name, p.log.String())
		}
		if t.Failed() {
			t.Logf("%s: rrdp-proxy serve log:\n%s", name, p.log.String())
		}
	})
	return p
}

// localhostClient is an HTTPS client that trusts pki and reaches
// https://localhost:PORT/ at addr (127.0.0.1:PORT): the name the
// certificates and the relying parties use.
func localhostClient(pki *rp.PKI, addr string, timeout time.Duration) *http.Client {
	conf := pki.ClientTLS()
	conf.ServerName = "localhost"
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig: conf,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp4", addr)
		},
	}}
}

// waitReady polls url with client until it answers 200, and fails the
// test if the process exits first or a minute passes.
func (p *serveProc) waitReady(t *testing.T, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("rrdp-proxy serve exited: %v\n%s", err, p.log.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not 200 after a minute (%v)\n%s", url, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// lockedBuffer is a bytes.Buffer safe for a process's two output
// streams and the test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 4<<20 { // the rest is dropped
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
