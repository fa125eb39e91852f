package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const frontHost = "rrdp.example.net"

// selfSigned writes a self-signed certificate and key for frontHost into
// dir and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: frontHost},
		DNSNames:              []string{frontHost},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// mainConf wraps an http-level snippet into a complete nginx.conf that
// keeps every file nginx writes inside prefix and runs as one process
// under the current user.
func mainConf(prefix, snippet string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	include %[2]s;
}
`, prefix, snippet)
}

// frontConf is deploy/nginx/rrdp-front.conf moved onto loopback ports,
// the test's certificate and upstream, and, with cache set, with its
// optional proxy_cache lines switched on.
func frontConf(t *testing.T, prefix, cert, key string, upstream, httpPort, tlsPort int, cache bool) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("nginx", "rrdp-front.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	s = mustReplace(t, s, "/etc/nginx/tls/rrdp.example.net/fullchain.pem", cert)
	s = mustReplace(t, s, "/etc/nginx/tls/rrdp.example.net/privkey.pem", key)
	s = mustReplace(t, s, "server 127.0.0.1:8080 ", "server 127.0.0.1:"+strconv.Itoa(upstream)+" ")
	s = mustReplace(t, s, "listen 80;", "listen 127.0.0.1:"+strconv.Itoa(httpPort)+";")
	s = mustReplace(t, s, "listen 443 ssl http2;", "listen 127.0.0.1:"+strconv.Itoa(tlsPort)+" ssl http2;")
	s = mustReplace(t, s, "/var/cache/nginx/rrdp", filepath.Join(prefix, "cache"))
	var out []string
	enabled := 0
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "listen [::]") {
			continue // the test machine may lack IPv6
		}
		if cache && (strings.HasPrefix(trimmed, "# proxy_cache") || strings.HasPrefix(trimmed, "# add_header X-Cache-Status")) {
			line = strings.Replace(line, "# ", "", 1)
			enabled++
		}
		out = append(out, line)
	}
	if cache && enabled < 5 {
		t.Fatalf("found %d optional cache lines to switch on, want at least 5", enabled)
	}
	return strings.Join(out, "\n")
}

func writeConf(t *testing.T, prefix, snippet string) string {
	t.Helper()
	front := filepath.Join(prefix, "front.conf")
	if err := os.WriteFile(front, []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(mainConf(prefix, front)), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// nginxTest runs nginx -t on conf and fails with its output.
func nginxTest(t *testing.T, bin, prefix, conf string) {
	t.Helper()
	out, err := run(t, prefix, nil, bin, "-t", "-q", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", conf)
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestNginxSyntax checks both nginx files with nginx -t, the front with and
// without its optional cache, and makes sure nginx -t does fail on a
// broken copy.
func TestNginxSyntax(t *testing.T) {
	bin := need(t, "nginx", "nginx")
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("rrdp-front/cache=%v", cache), func(t *testing.T) {
			prefix := t.TempDir()
			cert, key, _ := selfSigned(t, prefix)
			conf := writeConf(t, prefix, frontConf(t, prefix, cert, key, freePort(t), freePort(t), freePort(t), cache))
			nginxTest(t, bin, prefix, conf)
		})
	}
	t.Run("compose-front", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("nginx", "compose-front.conf"))
		if err != nil {
			t.Fatal(err)
		}
		// The compose service names resolve only inside compose's network.
		s := mustReplace(t, string(raw), "server proxy-1:8080;", "server 127.0.0.1:"+strconv.Itoa(freePort(t))+";")
		s = mustReplace(t, s, "server proxy-2:8080;", "server 127.0.0.1:"+strconv.Itoa(freePort(t))+";")
		s = mustReplace(t, s, "listen 80;", "listen 127.0.0.1:"+strconv.Itoa(freePort(t))+";")
		s = mustReplace(t, s, "listen 443 ssl http2;", "listen 127.0.0.1:"+strconv.Itoa(freePort(t))+" ssl http2;")
		prefix := t.TempDir()
		// The pair compose mounts from deploy/tls.
		cert, key, _ := selfSigned(t, prefix)
		s = mustReplace(t, s, "ssl_certificate /etc/nginx/tls/fullchain.pem;", "ssl_certificate "+cert+";")
		s = mustReplace(t, s, "ssl_certificate_key /etc/nginx/tls/privkey.pem;", "ssl_certificate_key "+key+";")
		nginxTest(t, bin, prefix, writeConf(t, prefix, s))
	})
	t.Run("broken copy fails", func(t *testing.T) {
		prefix := t.TempDir()
		cert, key, _ := selfSigned(t, prefix)
		s := frontConf(t, prefix, cert, key, freePort(t), freePort(t), freePort(t), false)
		s = mustReplace(t, s, "proxy_max_temp_file_size 0;", "proxy_max_temp_file_size;")
		conf := writeConf(t, prefix, s)
		out, err := run(t, prefix, nil, bin, "-t", "-q", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", conf)
		if err == nil {
			t.Errorf("nginx -t accepted a broken configuration:\n%s", out)
		}
	})
}

// upstream is an HTTP server standing where rrdp-proxy stands behind
// nginx: it serves one notification with a strong ETag and answers
// conditional and range requests (net/http.ServeContent), and records the
// Host header of each request.
type upstream struct {
	*httptest.Server
	mu    sync.Mutex
	hosts []string
}

const notification = `<notification xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="9df4b597-af9e-4dca-bdda-719cce2c4e28" serial="2"><snapshot uri="https://rrdp.example.net/s.xml" hash="00"/></notification>`

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	modified := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hosts = append(u.hosts, r.Host)
		u.mu.Unlock()
		switch r.URL.Path {
		case "/notification.xml", "/status":
			w.Header().Set("ETag", `"n2"`)
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "application/xml")
			http.ServeContent(w, r, "", modified, strings.NewReader(notification))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// startNginx runs nginx on conf in the foreground until the test ends and
// waits until port accepts connections.
func startNginx(t *testing.T, bin, prefix, conf string, port int) {
	t.Helper()
	cmd := exec.Command(bin, "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", err, out.String(), log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %d after 30 s", port)
		}
	}
}

// TestNginxFront sends relying-party requests through the front as
// configured: over TLS for the repository's host name, with validators,
// a range, a plain-HTTP redirect and the operator-only pages.
func TestNginxFront(t *testing.T) {
	bin := need(t, "nginx", "nginx")
	up := newUpstream(t)
	upPort := up.Listener.Addr().(*net.TCPAddr).Port
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			prefix := t.TempDir()
			cert, key, pool := selfSigned(t, prefix)
			httpPort, tlsPort := freePort(t), freePort(t)
			conf := writeConf(t, prefix, frontConf(t, prefix, cert, key, upPort, httpPort, tlsPort, cache))
			startNginx(t, bin, prefix, conf, tlsPort)

			tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
			client := &http.Client{
				Timeout: 30 * time.Second,
				Transport: &http.Transport{
					TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: frontHost},
					DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
						var d net.Dialer
						return d.DialContext(ctx, network, tlsAddr)
					},
				},
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			get := func(url string, hdr map[string]string) (*http.Response, string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				if err != nil {
					t.Fatal(err)
				}
				return resp, string(body)
			}

			resp, body := get("https://"+frontHost+"/notification.xml", nil)
			if resp.StatusCode != http.StatusOK || body != notification {
				t.Fatalf("GET notification.xml: %s, body %q", resp.Status, body)
			}
			if got := resp.Header.Get("ETag"); got != `"n2"` {
				t.Errorf("ETag: got %q, want the upstream's strong \"n2\"", got)
			}
			if got := resp.Header.Get("Last-Modified"); got != "Mon, 30 Nov 2026 12:00:00 GMT" {
				t.Errorf("Last-Modified: got %q", got)
			}
			if cache {
				// Fresh for max-age=60: the second request is nginx's.
				resp, _ = get("https://"+frontHost+"/notification.xml", nil)
				if got := resp.Header.Get("X-Cache-Status"); got != "HIT" {
					t.Errorf("cache on, second request: X-Cache-Status %q, want HIT", got)
				}
				if got := resp.Header.Get("ETag"); got != `"n2"` {
					t.Errorf("ETag from nginx's cache: got %q, want \"n2\"", got)
				}
			}
			resp, _ = get("https://"+frontHost+"/notification.xml", map[string]string{"If-None-Match": `"n2"`})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: got %s, want 304", resp.Status)
			}
			resp, _ = get("https://"+frontHost+"/notification.xml", map[string]string{"If-Modified-Since": "Mon, 30 Nov 2026 12:00:00 GMT"})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("If-Modified-Since: got %s, want 304", resp.Status)
			}
			resp, body = get("https://"+frontHost+"/notification.xml", map[string]string{"Range": "bytes=0-13"})
			if resp.StatusCode != http.StatusPartialContent || body != notification[:14] {
				t.Errorf("Range: got %s %q, want 206 %q", resp.Status, body, notification[:14])
			}
			resp, _ = get("https://"+frontHost+"/status", nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("/status from 127.0.0.1: got %s, want 200", resp.Status)
			}

			// The operator pages refuse other addresses: 127.0.0.2 is
			// loopback but not in the allow list.
			other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: frontHost},
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
					return d.DialContext(ctx, network, tlsAddr)
				},
			}}
			for _, path := range []string{"/status", "/status.json", "/metrics"} {
				resp, err := other.Get("https://" + frontHost + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s from 127.0.0.2: got %s, want 403", path, resp.Status)
				}
			}
			resp, err := other.Get("https://" + frontHost + "/notification.xml")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("notification.xml from 127.0.0.2: got %s, want 200", resp.Status)
			}

			plain := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/notification.xml", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = frontHost
			resp, err = plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "https://"+frontHost+"/notification.xml" {
				t.Errorf("plain HTTP: got %s to %q, want 301 to https", resp.Status, loc)
			}

			up.mu.Lock()
			hosts := append([]string(nil), up.hosts...)
			up.mu.Unlock()
			if len(hosts) == 0 {
				t.Fatal("upstream saw no request")
			}
			for _, h := range hosts {
				if h != frontHost {
					t.Errorf("upstream saw Host %q, want %q", h, frontHost)
				}
			}
		})
	}
}
