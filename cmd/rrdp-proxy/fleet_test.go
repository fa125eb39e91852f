package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRedis runs a redis-server without persistence on a free loopback
// port until the test ends, and returns its address. It skips the test
// without redis-server, and fails it then if CI is set.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found and CI is set: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer", addr)
		}
		time.Sleep(10 * time.Millisecond) // polling for readiness: the server gives no other signal
	}
}

// TestServeFleet runs two nodes sharing a Redis: both become ready and
// serve the same notification bytes, and a reload that changes the
// repositories is refused as needing a restart.
func TestServeFleet(t *testing.T) {
	o := newOrigins(t, "a")
	redisAddr := startRedis(t)
	var nodes []*running
	var writers []func()
	for i := range 2 {
		file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
		write := func(addr string, repos ...string) {
			extra := fmt.Sprintf("[cache.redis]\nurl = \"redis://%s/0\"\nlease_ttl = \"5s\"\n", redisAddr)
			o.writeConfig(t, file, addr, extra, repos...)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("[server]\n"), fmt.Appendf(nil, "[server]\nnode = \"node-%d\"\n", i), 1)
			writeAtomic(t, file, b)
		}
		s := startServe(t, file, "127.0.0.1:0", func(addr string) { write(addr, "a") })
		nodes = append(nodes, s)
		writers = append(writers, func() { write(s.addr, "a", "b") })
	}
	var bodies [][]byte
	for _, s := range nodes {
		waitStatus(t, s.base+"/readyz", http.StatusOK, s.log)
		checkNotifications(t, s.base+o.proxyPath("a"), o.repos["a"].Info().Serial)
		_, b := get(t, s.base+o.proxyPath("a")+"notification.xml")
		bodies = append(bodies, b)
	}
	if !bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("the nodes serve different notification.xml bytes:\n%s\n%s", bodies[0], bodies[1])
	}
	s := nodes[1]
	writers[1]()
	s.reload <- syscall.SIGHUP
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.log.String(), "needs a restart with redis") {
		if time.Now().After(deadline) {
			t.Fatalf("no \"needs a restart with redis\" in the log:\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range nodes {
		s.stop(t)
	}
}
