package rp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// OriginConfig configures NewOrigin.
type OriginConfig struct {
	// Dir is the directory served at the root of the origin: the URL path
	// /a/b is the file Dir/a/b. Symbolic links are followed.
	Dir string
	// PKI provides the server certificate. Required.
	PKI *PKI
	// Port is the TCP port. Zero picks a free one. Use a fixed port when
	// the repository's TAL and certificates name it (3000 for the Krill
	// data set).
	Port int
	// PortWait is how long NewOrigin waits for a fixed Port that is in
	// use (by a test of another package, say) to become free. Zero means
	// fail at once.
	PortWait time.Duration
	// NoIPv6 makes the origin listen on 127.0.0.1 only. By default it
	// also listens on [::1] when the host has that address: URLs say
	// "localhost", which the relying parties may resolve to ::1 first
	// (rpki-client then logs "connect: Connection refused" before it
	// falls back to 127.0.0.1).
	NoIPv6 bool
	// Nginx serves Dir through Debian's nginx instead of net/http.
	Nginx bool
	// NginxBinary is the nginx executable; empty means "nginx" on PATH.
	NginxBinary string
	// HTTP, with Nginx, also serves Dir over plain HTTP on a free port of
	// 127.0.0.1 (HTTPURL), with the requests recorded like the https
	// ones: a publication server's internal address.
	HTTP bool
	// NginxBench, if set with Nginx, tunes nginx for a load benchmark
	// (see NginxBench); Requests, Counts and Reset then do not record.
	NginxBench *NginxBench
}

// Request is one request the origin answered.
type Request struct {
	Method string
	Path   string
	Status int
}

// Origin serves a directory over HTTPS on the loopback interface, with
// Last-Modified, a strong ETag, If-Modified-Since and If-None-Match, and
// records every request. Close stops it.
type Origin struct {
	unlock   func() // the lock of a fixed port (LockPort)
	port     int
	httpPort int // nginx's plain HTTP port (NginxBench.HTTP), or 0
	ipv6     bool

	// Go backend.
	srv *http.Server
	wg  sync.WaitGroup
	mu  sync.Mutex
	log []Request

	// nginx backend.
	ngx *nginx
}

// NewOrigin starts an origin for cfg.
func NewOrigin(cfg OriginConfig) (*Origin, error) {
	if cfg.PKI == nil {
		return nil, errors.New("start origin: no PKI")
	}
	if cfg.HTTP && !cfg.Nginx {
		return nil, errors.New("start origin: plain HTTP needs nginx")
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("start origin: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("start origin: %s is not a directory", cfg.Dir)
	}
	unlock := func() {}
	if cfg.Port != 0 {
		var err error
		if unlock, err = LockPort(cfg.Port, cfg.PortWait); err != nil {
			return nil, fmt.Errorf("start origin: %w", err)
		}
	}
	lns, err := listenWait(cfg.Port, !cfg.NoIPv6, cfg.PortWait)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("start origin: %w", err)
	}
	o := &Origin{port: lns[0].Addr().(*net.TCPAddr).Port, ipv6: len(lns) > 1, unlock: unlock}
	if cfg.Nginx {
		// nginx binds the addresses itself: release them first. Another
		// process could take a free port in between; tests that need a
		// fixed port fail clearly in that case.
		for _, ln := range lns {
			ln.Close()
		}
		if cfg.HTTP || cfg.NginxBench != nil && cfg.NginxBench.HTTP {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				unlock()
				return nil, fmt.Errorf("start origin: %w", err)
			}
			o.httpPort = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
		}
		o.ngx, err = startNginx(cfg, o.port, o.httpPort, o.ipv6)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("start origin: %w", err)
		}
		return o, nil
	}
	o.srv = &http.Server{
		Handler:           &fileHandler{dir: cfg.Dir, record: o.record},
		TLSConfig:         cfg.PKI.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		// TLS handshake failures show up in the relying party's log.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	for _, ln := range lns {
		o.wg.Go(func() { o.srv.ServeTLS(ln, "", "") })
	}
	return o, nil
}

// Listen listens on 127.0.0.1:port and, when the host has ::1, on [::1]
// at the same port: a server the relying parties reach as "localhost"
// must answer on both (see NoIPv6). Port 0 picks a free port; a fixed
// port in use is retried until wait has passed, and the error then says
// that another process holds it. The caller serves and closes the
// listeners.
func Listen(port int, wait time.Duration) ([]net.Listener, error) {
	lns, err := listenWait(port, true, wait)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return lns, nil
}

// listenWait calls listen until the port is free or wait has passed.
func listenWait(port int, ipv6 bool, wait time.Duration) ([]net.Listener, error) {
	deadline := time.Now().Add(wait)
	for {
		lns, err := listen(port, ipv6)
		if err == nil || port == 0 || !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("port %d is in use by another process (waited %v): %w", port, wait, err)
			}
			return lns, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listen opens 127.0.0.1:port and, if ipv6 is set and the host has ::1,
// [::1] on the same port. With port 0 it retries a few free ports until
// both addresses can be bound.
func listen(port int, ipv6 bool) ([]net.Listener, error) {
	for attempt := 0; ; attempt++ {
		ln4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("listen on 127.0.0.1:%d: %w", port, err)
		}
		if !ipv6 {
			return []net.Listener{ln4}, nil
		}
		p := ln4.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(p)))
		switch {
		case err == nil:
			return []net.Listener{ln4, ln6}, nil
		case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
			// No ::1 on this host: the resolver cannot return it either.
			return []net.Listener{ln4}, nil
		case port == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 10:
			ln4.Close()
			continue
		default:
			ln4.Close()
			return nil, fmt.Errorf("listen on [::1]:%d: %w", p, err)
		}
	}
}

// Port returns the TCP port the origin listens on.
func (o *Origin) Port() int { return o.port }

// HTTPURL returns http://127.0.0.1:PORT/, where nginx serves the
// directory over plain HTTP with HTTP or NginxBench.HTTP, or "" without.
func (o *Origin) HTTPURL() string {
	if o.httpPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d/", o.httpPort)
}

// IPv6 reports whether the origin also listens on [::1].
func (o *Origin) IPv6() bool { return o.ipv6 }

// URL returns https://localhost:PORT/, the base URL of the served directory.
func (o *Origin) URL() string { return fmt.Sprintf("https://localhost:%d/", o.port) }

// Requests returns the requests answered so far, oldest first.
func (o *Origin) Requests() ([]Request, error) {
	if o.ngx != nil {
		return o.ngx.requests()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.log), nil
}

// Counts returns how many requests each URL path received, by status: the
// key is "PATH STATUS", e.g. "/rrdp/notification.xml 304".
func (o *Origin) Counts() (map[string]int, error) {
	reqs, err := o.Requests()
	if err != nil {
		return nil, err
	}
	m := make(map[string]int)
	for _, r := range reqs {
		m[r.Path+" "+strconv.Itoa(r.Status)]++
	}
	return m, nil
}

// Reset forgets the requests recorded so far.
func (o *Origin) Reset() error {
	if o.ngx != nil {
		return o.ngx.resetLog()
	}
	o.mu.Lock()
	o.log = nil
	o.mu.Unlock()
	return nil
}

// Close stops the origin and waits for it.
func (o *Origin) Close() error {
	defer o.unlock()
	if o.ngx != nil {
		return o.ngx.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := o.srv.Shutdown(ctx)
	if err != nil {
		o.srv.Close()
	}
	o.wg.Wait()
	if err != nil {
		return fmt.Errorf("stop origin: %w", err)
	}
	return nil
}

func (o *Origin) record(r Request) {
	o.mu.Lock()
	o.log = append(o.log, r)
	o.mu.Unlock()
}

// fileHandler serves regular files below dir with http.ServeContent and a
// strong ETag computed from the content.
type fileHandler struct {
	dir    string
	record func(Request)
}

func (h *fileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() { h.record(Request{Method: r.Method, Path: r.URL.Path, Status: sw.status}) }()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		sw.Header().Set("Allow", "GET, HEAD")
		http.Error(sw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// http.Dir cleans the path and keeps it inside dir.
	f, err := http.Dir(h.dir).Open(path.Clean("/" + r.URL.Path))
	if err != nil {
		http.NotFound(sw, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(sw, r)
		return
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		http.Error(sw, "read error", http.StatusInternalServerError)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		http.Error(sw, "read error", http.StatusInternalServerError)
		return
	}
	sw.Header().Set("ETag", `"`+hex.EncodeToString(sum.Sum(nil)[:16])+`"`)
	if path.Ext(fi.Name()) == ".xml" {
		sw.Header().Set("Content-Type", "application/xml")
	}
	http.ServeContent(sw, r, fi.Name(), fi.ModTime(), f)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
