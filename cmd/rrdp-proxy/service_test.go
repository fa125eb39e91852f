package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// serveWith runs serve with opts (Config, Reload and Log set here) until
// the test ends, the configuration written by write for the address of a
// listener opened first.
func serveWith(t *testing.T, file string, opts serveOptions, write func(addr string)) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	write(addr)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: addr, base: "http://" + addr, reload: make(chan os.Signal, 1), log: new(syncBuffer), cancel: cancel, done: make(chan error, 1)}
	if opts.Listeners == nil {
		opts.Listeners = map[string]net.Listener{}
	}
	opts.Listeners[addr] = ln
	opts.Config, opts.Reload, opts.Log = file, r.reload, r.log
	go func() {
		err := serve(ctx, opts)
		if err != nil {
			fmt.Fprintf(r.log, "serve returned: %v\n", err)
		}
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Error("serve did not stop")
		}
	})
	return r
}

// TestNotify reads what serve tells systemd from a real unixgram socket:
// READY=1 once it serves, RELOADING=1 with MONOTONIC_USEC and READY=1
// again around a reload, WATCHDOG=1 pings, STOPPING=1 at the end.
func TestNotify(t *testing.T) {
	o := newOrigins(t, "a")
	sock := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())}
	notify, err := newNotifier(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	msgs := make(chan string, 100)
	go func() { // ends when pc is closed
		buf := make([]byte, 4096)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	// next returns the next message holding want, skipping watchdog pings
	// unless want is one.
	next := func(want string) string {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed before %q", want)
				}
				if strings.Contains(m, want) {
					return m
				}
				if !strings.HasPrefix(m, "WATCHDOG=1") && want != "WATCHDOG=1" {
					t.Errorf("got %q while waiting for %q", m, want)
				}
			case <-deadline:
				t.Fatalf("no %q within a minute", want)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	s := serveWith(t, file, serveOptions{Notify: notify}, func(addr string) { o.writeConfig(t, file, addr, "", "a") })
	next("READY=1")
	if code, _ := get(t, s.base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after READY=1: got %d", code)
	}
	next("WATCHDOG=1")
	s.reload <- syscall.SIGHUP
	m := next("RELOADING=1")
	var usec int64
	for line := range strings.SplitSeq(m, "\n") {
		if v, ok := strings.CutPrefix(line, "MONOTONIC_USEC="); ok {
			usec, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if usec <= 0 {
		t.Errorf("RELOADING=1 without a positive MONOTONIC_USEC: %q", m)
	}
	next("READY=1")
	s.stop(t)
	next("STOPPING=1")
}

// TestNotifyEnvironment: no NOTIFY_SOCKET, no notifier; a bad
// WATCHDOG_USEC is an error; another process's watchdog is not ours.
func TestNotifyEnvironment(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, c := range []struct {
		name     string
		env      map[string]string
		nil, bad bool
		watchdog time.Duration
	}{
		{"unset", map[string]string{}, true, false, 0},
		{"socket", map[string]string{"NOTIFY_SOCKET": sock}, false, false, 0},
		{"watchdog", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "30000000"}, false, false, 30 * time.Second},
		{"other pid", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, false, false, 0},
		{"bad usec", map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "soon"}, true, true, 0},
		{"no socket", map[string]string{"NOTIFY_SOCKET": sock + "-none"}, true, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := newNotifier(func(k string) string { return c.env[k] })
			if (err != nil) != c.bad || (n == nil) != c.nil {
				t.Fatalf("got %v, %v; want nil %v, error %v", n, err, c.nil, c.bad)
			}
			if n != nil {
				defer n.Close()
				if n.watchdog != c.watchdog {
					t.Errorf("watchdog %v, want %v", n.watchdog, c.watchdog)
				}
			}
		})
	}
}

// TestTLSReload: after SIGHUP with a new certificate and key in the
// files, a new TLS client sees the new certificate, while a connection
// opened before keeps working with the old one.
func TestTLSReload(t *testing.T) {
	o := newOrigins(t, "a")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var leaves [2][]byte
	var pairs [2][2][]byte
	for i := range leaves {
		pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for j, f := range []string{pki.CertFile, pki.KeyFile} {
			if pairs[i][j], err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		blk, _ := pem.Decode(pairs[i][0])
		leaves[i] = blk.Bytes
	}
	install := func(i int) {
		writeAtomic(t, certFile, pairs[i][0])
		writeAtomic(t, keyFile, pairs[i][1])
	}
	install(0)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := tln.Addr().String()
	file := filepath.Join(dir, "rrdp-proxy.toml")
	write := func(addr string) {
		o.writeConfig(t, file, addr, "", "a")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		extra := fmt.Sprintf("[server]\ntls_listen = [%q]\ntls_cert = %q\ntls_key = %q\n", tlsAddr, certFile, keyFile)
		writeAtomic(t, file, bytes.Replace(b, []byte("[server]\n"), []byte(extra), 1))
	}
	var addr string
	s := serveWith(t, file, serveOptions{Listeners: map[string]net.Listener{tlsAddr: tln}}, func(a string) { addr = a; write(a) })
	waitStatus(t, s.base+"/healthz", http.StatusOK, s.log)

	dial := func() (*tls.Conn, *bufio.Reader) {
		t.Helper()
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true}) // the leaf is compared below
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	ask := func(c *tls.Conn, br *bufio.Reader) {
		t.Helper()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", tlsAddr)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request on a kept connection: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d", resp.StatusCode)
		}
	}
	leaf := func(c *tls.Conn) []byte { return c.ConnectionState().PeerCertificates[0].Raw }

	old, oldR := dial()
	ask(old, oldR)
	if !bytes.Equal(leaf(old), leaves[0]) {
		t.Fatal("the first connection does not see the first certificate")
	}
	install(1)
	s.reload <- syscall.SIGHUP
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.log.String(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload in the log:\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(s.log.String(), "needs a restart") {
		t.Errorf("a certificate change was reported as needing a restart:\n%s", s.log)
	}
	c, br := dial()
	ask(c, br)
	if !bytes.Equal(leaf(c), leaves[1]) {
		t.Error("a connection after the reload does not see the new certificate")
	}
	ask(old, oldR) // the old connection was not dropped
	if !bytes.Equal(leaf(old), leaves[0]) {
		t.Error("the old connection's certificate changed")
	}
	_ = addr
}

// TestReloadBookkeeping: a change that needs a restart is reported at
// every reload until the restart, not only at the first, and reverting it
// silences the warning; the configuration kept is the one in force.
func TestReloadBookkeeping(t *testing.T) {
	o := newOrigins(t, "a")
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	var addr string
	s := startServe(t, file, "127.0.0.1:0", func(a string) { addr = a; o.writeConfig(t, file, a, "", "a") })
	waitStatus(t, s.base+"/readyz", http.StatusOK, s.log)
	base, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const warn = `msg="configuration change needs a restart: ignored" key=server.max_conns`
	reload := func(doc []byte, reloads int) {
		t.Helper()
		writeAtomic(t, file, doc)
		s.reload <- syscall.SIGHUP
		deadline := time.Now().Add(time.Minute)
		for strings.Count(s.log.String(), "configuration reloaded") < reloads {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not done:\n%s", reloads, s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	changed := bytes.Replace(base, []byte("[server]\n"), []byte("[server]\nmax_conns = 7\n"), 1)
	reload(changed, 1)
	reload(changed, 2)
	if n := strings.Count(s.log.String(), warn); n != 2 {
		t.Errorf("after two reloads with max_conns changed: %d warnings, want 2\n%s", n, s.log)
	}
	reload(base, 3)
	if n := strings.Count(s.log.String(), warn); n != 2 {
		t.Errorf("after reverting max_conns: %d warnings, want still 2\n%s", n, s.log)
	}
	_ = addr
}
