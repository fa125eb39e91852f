package rp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// nginx is a running nginx, one process without workers, serving one
// directory.
type nginx struct {
	prefix string
	port   int
	bench  bool // no access log
	pki    *PKI
	marks  int // settle markers sent
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	werr   error         // cmd.Wait's result, valid after done
	out    bytes.Buffer  // stdout and stderr
}

// NginxBench sets nginx up for a load benchmark, the way a static file
// server is tuned in production, instead of for a test: a master process
// with Workers worker processes, no access log (Origin.Requests then
// fails), sendfile, an open file cache, keep-alive connections that are
// never closed for their request count, and optionally plain HTTP and
// gzip_static.
type NginxBench struct {
	// Workers is worker_processes (1).
	Workers int
	// HTTP makes nginx also serve Dir over plain HTTP on a free port of
	// 127.0.0.1 (Origin.HTTPURL).
	HTTP bool
	// GzipStatic answers a client that accepts gzip with FILE.gz, when
	// that file exists beside FILE (gzip_static on).
	GzipStatic bool
}

var nginxConf = template.Must(template.New("nginx.conf").Parse(`# written by rp.NewOrigin
daemon off;
pid "{{.Prefix}}/nginx.pid";
error_log "{{.Prefix}}/error.log" warn;
{{- if .Bench}}
master_process on;
{{- if .Root}}
# Workers keep root's rights, as the single process of a test does: the
# directory served may be readable by root only.
user root;
{{- end}}
worker_processes {{.Bench.Workers}};
worker_rlimit_nofile 8192;
events {
	worker_connections 4096;
}
{{- else}}
master_process off;
events {
	worker_connections 64;
}
{{- end}}
http {
{{- if .Bench}}
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_requests 1000000;
	keepalive_timeout 60s;
	open_file_cache max=10000 inactive=60s;
	open_file_cache_valid 60s;
{{- if .Bench.GzipStatic}}
	gzip_static on;
	gzip_vary on;
{{- end}}
{{- else}}
	log_format rp '$request_method $status $uri';
	access_log "{{.Prefix}}/access.log" rp;
{{- end}}
	client_body_temp_path "{{.Prefix}}/tmp/body";
	proxy_temp_path "{{.Prefix}}/tmp/proxy";
	fastcgi_temp_path "{{.Prefix}}/tmp/fastcgi";
	uwsgi_temp_path "{{.Prefix}}/tmp/uwsgi";
	scgi_temp_path "{{.Prefix}}/tmp/scgi";
	types {
		application/xml xml;
	}
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:{{.Port}} ssl;
{{- if .IPv6}}
		listen [::1]:{{.Port}} ssl;
{{- end}}
		server_name localhost;
		ssl_certificate "{{.Cert}}";
		ssl_certificate_key "{{.Key}}";
		root "{{.Dir}}";
		autoindex off;
	}
{{- if .HTTPPort}}
	server {
		listen 127.0.0.1:{{.HTTPPort}};
		server_name localhost;
		root "{{.Dir}}";
		autoindex off;
	}
{{- end}}
}
`))

// startNginx writes a configuration into a new temporary directory, starts
// nginx in the foreground and waits until it completes a TLS handshake on
// 127.0.0.1:port. A non-zero httpPort also serves plain HTTP there.
func startNginx(cfg OriginConfig, port, httpPort int, ipv6 bool) (*nginx, error) {
	bin := cfg.NginxBinary
	if bin == "" {
		bin = "nginx"
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	prefix, err := os.MkdirTemp("", "rp-nginx-")
	if err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &nginx{prefix: prefix, port: port, bench: cfg.NginxBench != nil, pki: cfg.PKI, done: make(chan struct{})}
	fail := func(err error) (*nginx, error) {
		os.RemoveAll(prefix)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	for _, p := range []string{dir, prefix, cfg.PKI.CertFile, cfg.PKI.KeyFile} {
		if strings.ContainsAny(p, "\"\\$\n") {
			return fail(fmt.Errorf("path %q cannot be quoted in nginx.conf", p))
		}
	}
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o700); err != nil {
		return fail(err)
	}
	var bench *NginxBench
	if cfg.NginxBench != nil {
		b := *cfg.NginxBench
		if b.Workers <= 0 {
			b.Workers = 1
		}
		bench = &b
	}
	var conf bytes.Buffer
	err = nginxConf.Execute(&conf, map[string]any{
		"Prefix":   prefix,
		"Port":     port,
		"HTTPPort": httpPort,
		"Bench":    bench,
		"Root":     os.Geteuid() == 0,
		"IPv6":     ipv6,
		"Cert":     cfg.PKI.CertFile,
		"Key":      cfg.PKI.KeyFile,
		"Dir":      dir,
	})
	if err != nil {
		return fail(err)
	}
	confFile := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confFile, conf.Bytes(), 0o600); err != nil {
		return fail(err)
	}
	// -e: without it nginx opens the compiled-in error log
	// (/var/log/nginx/error.log) before it reads the configuration.
	n.cmd = exec.Command(bin, "-e", filepath.Join(prefix, "error.log"), "-p", prefix, "-c", confFile)
	n.cmd.Stdout = &n.out
	n.cmd.Stderr = &n.out
	n.cmd.SysProcAttr = childAttr()
	if err := n.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() {
		n.werr = n.cmd.Wait()
		close(n.done)
	}()
	if err := n.waitReady(cfg.PKI, port, 10*time.Second); err != nil {
		n.stop()
		return fail(err)
	}
	return n, nil
}

// waitReady polls with TLS handshakes, which nginx does not log as
// requests, until one succeeds, nginx exits or the timeout passes.
func (n *nginx) waitReady(pki *PKI, port int, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := pki.ClientTLS()
	conf.ServerName = "localhost"
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-n.done:
			return fmt.Errorf("nginx exited (%v): %s%s", n.werr, n.out.String(), n.errorLog())
		default:
		}
		d := &net.Dialer{Timeout: time.Second}
		c, err := tls.DialWithDialer(d, "tcp4", addr, conf)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx not ready on %s after %v: %w; %s", addr, timeout, err, n.errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "error.log"))
	return string(b)
}

// markPrefix starts the paths of the marker requests settle sends; they
// are left out of what requests returns.
const markPrefix = "/.rp-settle/"

// settle makes the access log complete up to now. nginx writes a request's
// line after it has sent the response, so a client can hold the answer
// before the line exists. settle sends a marker request and waits for its
// line: nginx runs as one process (master_process off) and logs requests in
// the order it finishes them, so every request answered before the marker
// was sent is logged by then.
func (n *nginx) settle() error {
	n.marks++
	mark := markPrefix + strconv.Itoa(n.marks)
	conf := n.pki.ClientTLS()
	conf.ServerName = "localhost"
	c := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true},
	}
	resp, err := c.Get("https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) + mark)
	if err != nil {
		return fmt.Errorf("settle nginx access log: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(n.prefix, "access.log"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("settle nginx access log: %w", err)
		}
		if bytes.Contains(b, []byte(" "+mark+"\n")) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("settle nginx access log: marker %s not logged after 5s", mark)
		}
		time.Sleep(5 * time.Millisecond) // polling a file nginx appends to
	}
}

// requests parses the access log, written with the format
// "$request_method $status $uri", after settling it.
func (n *nginx) requests() ([]Request, error) {
	if n.bench {
		return nil, errors.New("read nginx access log: none in benchmark mode")
	}
	if err := n.settle(); err != nil {
		return nil, err
	}
	name := filepath.Join(n.prefix, "access.log")
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read nginx access log: %w", err)
	}
	defer f.Close()
	var reqs []Request
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.SplitN(sc.Text(), " ", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("read nginx access log %s:%d: want 3 fields, got %q", name, line, sc.Text())
		}
		status, err := strconv.Atoi(fields[1])
		if err != nil {
			return nil, fmt.Errorf("read nginx access log %s:%d: status %q: %w", name, line, fields[1], err)
		}
		if strings.HasPrefix(fields[2], markPrefix) {
			continue
		}
		reqs = append(reqs, Request{Method: fields[0], Path: fields[2], Status: status})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read nginx access log: %w", err)
	}
	return reqs, nil
}

// resetLog truncates the access log; nginx appends with O_APPEND, so later
// lines start at offset 0.
func (n *nginx) resetLog() error {
	if n.bench {
		return nil
	}
	if err := n.settle(); err != nil { // no late line may survive the reset
		return err
	}
	err := os.Truncate(filepath.Join(n.prefix, "access.log"), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reset nginx access log: %w", err)
	}
	return nil
}

// stop terminates nginx (fast shutdown), waits for it and removes its
// prefix directory.
func (n *nginx) stop() error {
	defer os.RemoveAll(n.prefix)
	select {
	case <-n.done:
		return nil
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
		return fmt.Errorf("stop nginx: killed after 5s: %s", n.errorLog())
	}
	return nil
}
