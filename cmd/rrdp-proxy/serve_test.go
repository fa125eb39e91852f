package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// keyCache keeps the keys repotest derives, shared by the tests of the
// package.
var keyCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rrdp-proxy-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// origins is a real HTTPS origin serving generated repositories (profile
// small), each in its own directory.
type origins struct {
	origin *rp.Origin
	ca     string // the CA file of the origin's certificate
	repos  map[string]*repotest.Repo
	dir    string // the origin's directory: one subdirectory per repository
}

func newOrigins(t *testing.T, names ...string) *origins {
	t.Helper()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	p, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	os := &origins{origin: o, ca: pki.CAFile, repos: map[string]*repotest.Repo{}, dir: dir}
	now := time.Now().UTC().Truncate(time.Second)
	for i, name := range names {
		r, err := repotest.Create(filepath.Join(dir, name), repotest.Config{Profile: p, Seed: int64(i + 1), BaseURL: o.URL() + name + "/"}, now, repotest.Options{KeyCache: keyCache})
		if err != nil {
			t.Fatal(err)
		}
		os.repos[name] = r
	}
	return os
}

// notification returns the origin's notification URL of repository name.
func (o *origins) notification(name string) string {
	return o.origin.URL() + name + "/rrdp/notification.xml"
}

// proxyPath returns the path under which a mirror serves the directory
// of name's notification.
func (o *origins) proxyPath(name string) string {
	return fmt.Sprintf("/localhost:%d/%s/rrdp/", o.origin.Port(), name)
}

// writeConfig writes a configuration serving repos in mirror mode on addr.
func (o *origins) writeConfig(t *testing.T, file, addr, extra string, repos ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nlisten = [%q]\nmirror_base = \"https://%s/\"\nlog_level = \"debug\"\n\n", addr, addr)
	fmt.Fprintf(&b, "[cache]\nmemory = \"64MiB\"\n%s\n", extra)
	for _, name := range repos {
		fmt.Fprintf(&b, "[[repository]]\nname = %q\norigin = %q\nmode = \"mirror\"\nca_file = %q\npoll_interval = \"1s\"\n\n",
			name, o.notification(name), o.ca)
	}
	writeAtomic(t, file, []byte(b.String()))
}

// writeAtomic replaces file with b in one rename, so that a serve reading
// it meanwhile sees the old or the new content.
func writeAtomic(t *testing.T, file string, b []byte) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a serve started in-process.
type running struct {
	addr   string
	base   string // http://addr
	reload chan os.Signal
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startServe runs serve on addr ("127.0.0.1:0" for a free port) with the
// configuration that write writes for the actual address. Serve takes the
// extra listeners too, for the addresses they listen on (an admin
// listener).
func startServe(t *testing.T, file, addr string, write func(addr string), extra ...net.Listener) *running {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	write(addr)
	lns := map[string]net.Listener{addr: ln}
	for _, l := range extra {
		lns[l.Addr().String()] = l
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: addr, base: "http://" + addr, reload: make(chan os.Signal, 1), log: new(syncBuffer), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := serve(ctx, serveOptions{Config: file, Reload: r.reload, Log: r.log, Listeners: lns})
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

// stop cancels serve and checks that it returned nil and closed its
// listener.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("serve returned %v\nlog:\n%s", err, r.log)
		}
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop within a minute")
	}
	r.done <- nil // for the cleanup
	if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after serve returned", r.addr)
	}
}

var testClient = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns the status and the body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	code, b, err := try(url)
	if err != nil {
		t.Fatal(err)
	}
	return code, b
}

func try(url string) (int, []byte, error) {
	resp, err := testClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp.StatusCode, b, nil
}

// waitStatus polls url until it answers want, for up to a minute.
func waitStatus(t *testing.T, url string, want int, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		code, body, err := try(url)
		if err == nil && code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got %d (%q, %v), want %d within a minute\nlog:\n%s", url, code, body, err, want, log)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// checkNotifications fetches both notifications of a repository served
// under url and checks they decode to serial want.
func checkNotifications(t *testing.T, url string, want uint64) {
	t.Helper()
	code, x := get(t, url+"notification.xml")
	if code != http.StatusOK {
		t.Fatalf("GET %snotification.xml: got %d, want 200", url, code)
	}
	nx, _, err := rrdpxml.DecodeNotification(bytes.NewReader(x), rrdpxml.Limits{})
	if err != nil {
		t.Fatalf("notification.xml: %v", err)
	}
	code, b := get(t, url+"notification.bin")
	if code != http.StatusOK {
		t.Fatalf("GET %snotification.bin: got %d, want 200", url, code)
	}
	nb, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	if err != nil {
		t.Fatalf("notification.bin: %v", err)
	}
	if nx.Serial != want || nb.Serial != want {
		t.Errorf("serials: xml %d, bin %d, want %d", nx.Serial, nb.Serial, want)
	}
}

func TestServe(t *testing.T) {
	o := newOrigins(t, "a", "b")
	dir := t.TempDir()
	file := filepath.Join(dir, "rrdp-proxy.toml")
	const state = "state_dir = \"state\""
	var addr string
	s := startServe(t, file, "127.0.0.1:0", func(a string) {
		addr = a
		o.writeConfig(t, file, a, state, "a")
	})
	waitStatus(t, s.base+"/readyz", http.StatusOK, s.log)
	checkNotifications(t, s.base+o.proxyPath("a"), o.repos["a"].Info().Serial)
	if code, _ := get(t, s.base+o.proxyPath("b")+"notification.xml"); code != http.StatusNotFound {
		t.Errorf("b before it is configured: got %d, want 404", code)
	}

	t.Run("reload adds", func(t *testing.T) {
		o.writeConfig(t, file, addr, state, "a", "b")
		s.reload <- syscall.SIGHUP
		waitStatus(t, s.base+o.proxyPath("b")+"notification.xml", http.StatusOK, s.log)
		waitStatus(t, s.base+"/readyz", http.StatusOK, s.log)
		checkNotifications(t, s.base+o.proxyPath("b"), o.repos["b"].Info().Serial)
		checkNotifications(t, s.base+o.proxyPath("a"), o.repos["a"].Info().Serial)
	})
	t.Run("reload changes", func(t *testing.T) {
		o.writeConfig(t, file, addr, state, "a", "b")
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		writeAtomic(t, file, bytes.Replace(b, []byte(`poll_interval = "1s"`), []byte(`poll_interval = "2s"`), 1))
		s.reload <- syscall.SIGHUP
		deadline := time.Now().Add(time.Minute)
		want := fmt.Sprintf(`msg="repository started" repo=a origin=%s base=https://%s%s from="serial %d"`,
			o.notification("a"), addr, o.proxyPath("a"), o.repos["a"].Info().Serial)
		for !strings.Contains(s.log.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the log:\n%s", want, s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Count(s.log.String(), `msg="repository started" repo=b`) != 1 {
			t.Errorf("b, unchanged, was restarted:\n%s", s.log)
		}
		checkNotifications(t, s.base+o.proxyPath("a"), o.repos["a"].Info().Serial)
	})
	t.Run("bad reload keeps the configuration", func(t *testing.T) {
		writeAtomic(t, file, []byte("[server]\nlisten = 8080\n"))
		s.reload <- syscall.SIGHUP
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(s.log.String(), "reload failed") {
			if time.Now().After(deadline) {
				t.Fatalf("no \"reload failed\" in the log:\n%s", s.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		checkNotifications(t, s.base+o.proxyPath("a"), o.repos["a"].Info().Serial)
		checkNotifications(t, s.base+o.proxyPath("b"), o.repos["b"].Info().Serial)
	})
	t.Run("reload removes", func(t *testing.T) {
		o.writeConfig(t, file, addr, state, "b")
		s.reload <- syscall.SIGHUP
		waitStatus(t, s.base+o.proxyPath("a")+"notification.xml", http.StatusNotFound, s.log)
		if code, _ := get(t, s.base+o.proxyPath("a")+"notification.bin"); code != http.StatusNotFound {
			t.Errorf("a's notification.bin after its removal: got %d, want 404", code)
		}
		waitStatus(t, s.base+"/readyz", http.StatusOK, s.log)
		checkNotifications(t, s.base+o.proxyPath("b"), o.repos["b"].Info().Serial)
	})
	t.Run("deltas flow", func(t *testing.T) {
		r := o.repos["b"]
		if err := r.Advance(time.Now().UTC().Truncate(time.Second), 1); err != nil {
			t.Fatal(err)
		}
		want := r.Info().Serial
		deadline := time.Now().Add(time.Minute)
		for {
			_, b := get(t, s.base+o.proxyPath("b")+"notification.bin")
			n, err := irpki.UnmarshalNotification(b, rrdpxml.Limits{})
			if err == nil && n.Serial == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serial %d not served within a minute (err %v)\nlog:\n%s", want, err, s.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	s.stop(t)
	if !strings.Contains(s.log.String(), "stopped") {
		t.Errorf("no \"stopped\" in the log:\n%s", s.log)
	}

	t.Run("restart while the origin is down", func(t *testing.T) {
		want := o.repos["b"].Info().Serial
		if err := o.origin.Close(); err != nil {
			t.Fatal(err)
		}
		s := startServe(t, file, addr, func(string) {})
		// No wait: the state directory is loaded before serving starts.
		if code, body := get(t, s.base+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz at once after the restart: got %d %q, want 200\nlog:\n%s", code, body, s.log)
		}
		checkNotifications(t, s.base+o.proxyPath("b"), want)
		s.stop(t)
	})
}

func TestServeUsage(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"serve", "--help"}, 0, "SIGHUP reloads"},
		{"missing file", []string{"serve", "--config", filepath.Join(t.TempDir(), "none.toml")}, 1, "none.toml"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if c.code == 0 {
				stderr = stdout
			}
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}
}

// TestServeSignals runs the serve command as main does and drives it with
// real signals: SIGHUP adds a repository, SIGTERM stops it with exit 0.
func TestServeSignals(t *testing.T) {
	o := newOrigins(t, "a", "b")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	o.writeConfig(t, file, addr, "", "a")
	log := new(syncBuffer)
	code := make(chan int, 1)
	go func() { code <- run([]string{"serve", "--config", file}, log, log) }()
	base := "http://" + addr
	// serve registers for the signals before it listens: once /readyz
	// answers, a signal reaches it and not the default action.
	waitStatus(t, base+"/readyz", http.StatusOK, log)
	o.writeConfig(t, file, addr, "", "a", "b")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+o.proxyPath("b")+"notification.bin", http.StatusOK, log)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d after SIGTERM, want 0\nlog:\n%s", c, log)
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop within a minute of SIGTERM\nlog:\n%s", log)
	}
	if !strings.Contains(log.String(), "msg=stopped") {
		t.Errorf("no msg=stopped in the log:\n%s", log)
	}
}
