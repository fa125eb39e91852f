package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

func TestDemo(t *testing.T) {
	before := goroutines()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	fetch := func(u string) (int, []byte) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		return resp.StatusCode, b
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	stderr := new(syncBuffer)
	done := make(chan error, 1)
	go func() {
		err := demo(ctx, demoOptions{listen: "127.0.0.1:0", every: 200 * time.Millisecond, keyCache: keyCache}, pw, stderr)
		pw.Close()
		done <- err
	}()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, pr)
	}()

	// Read up to the line that announces the serials: the URLs come
	// before it.
	var out, urls []string
	timeout := time.After(2 * time.Minute)
	for reading := true; reading; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended early: %v\noutput:\n%s\nstderr:\n%s", <-done, strings.Join(out, "\n"), stderr)
			}
			out = append(out, l)
			if strings.HasPrefix(l, "http://") {
				urls = append(urls, l)
			}
			reading = !strings.HasPrefix(l, "a new serial every")
		case <-timeout:
			t.Fatalf("no URLs within 2 minutes\noutput:\n%s\nstderr:\n%s", strings.Join(out, "\n"), stderr)
		}
	}
	text := strings.Join(out, "\n")
	for _, want := range []string{"equal to the origin's", "snapshot serial 1: XML ", "% smaller"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	var notifBin, addr string
	for _, want := range []string{"/notification.xml", "/notification.bin", "/status", "/metrics", "/readyz"} {
		found := false
		for _, u := range urls {
			if strings.HasSuffix(u, want) {
				found = true
				if want == "/notification.bin" {
					notifBin = u
				}
				p, err := url.Parse(u)
				if err != nil {
					t.Fatal(err)
				}
				addr = p.Host
			}
		}
		if !found {
			t.Errorf("no URL ending in %s among %q", want, urls)
		}
	}
	if strings.HasSuffix(addr, ":0") || addr == "" {
		t.Fatalf("the URLs do not give the actual address: %q", urls)
	}
	for _, u := range urls {
		code, body := fetch(u)
		if code != http.StatusOK {
			t.Errorf("GET %s: got %d %q, want 200", u, code, body)
		}
	}
	serial := func() uint64 {
		_, b := fetch(notifBin)
		n, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", notifBin, err)
		}
		return n.Serial
	}
	if s := serial(); s != 1 {
		t.Errorf("serial before any advance: got %d, want 1", s)
	}
	deadline := time.Now().Add(time.Minute)
	for serial() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no new serial within a minute\nstderr:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	// The proxy printed a delta line for it (or will, shortly).
	deadline = time.Now().Add(time.Minute)
	for printed := false; !printed; {
		select {
		case l := <-lines:
			printed = strings.HasPrefix(l, "serial 2: delta XML ")
		case <-time.After(time.Until(deadline)):
			t.Fatal("no line for serial 2")
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v, want nil\nstderr:\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop within a minute of its cancellation")
	}
	for range lines { // drain: the reader ends with the pipe
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the demo returned", addr)
	}
	tr.CloseIdleConnections()
	deadline = time.Now().Add(30 * time.Second)
	for goroutines() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before the demo, %d after it\n%s", before, goroutines(), bytes.TrimSpace(buf))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDemoUsage(t *testing.T) {
	code, stdout, _ := runCLI(t, "demo", "--help")
	if code != 0 || !strings.Contains(stdout, "--listen") || !strings.Contains(stdout, "--every") {
		t.Errorf("demo --help: exit %d, %q", code, stdout)
	}
	if code, _, _ := runCLI(t, "demo", "--every", "0s"); code != 2 {
		t.Errorf("demo --every 0s: exit %d, want 2", code)
	}
}

// goroutines counts the goroutines, except those that a process starts
// once and keeps (os/signal's loop, fasthttp's clock of the Date header)
// and fasthttp's cleaners, which sleep 10 to 30 seconds between rounds
// and end at the first round that finds their server stopped or their
// client without connections.
func goroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "os/signal.loop") || strings.Contains(g, "fasthttp.updateServerDate") ||
			strings.Contains(g, "fasthttp.(*workerPool).Start.func2") || strings.Contains(g, "fasthttp.(*Client).mCleaner") ||
			strings.Contains(g, "fasthttp.(*HostClient).connsCleaner") {
			continue
		}
		count++
	}
	return count
}
