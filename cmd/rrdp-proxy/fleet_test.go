package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestServeFleet runs two nodes sharing a Redis: both become ready and
// serve the same notification bytes, and a reload that changes the
// repositories is refused as needing a restart.
func TestServeFleet(t *testing.T) {
	o := newOrigins(t, "a")
	redisAddr := redistest.Start(t).Addr()
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
