package rp

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOrigin(t *testing.T) {
	pki, err := NewPKI(t.TempDir(), PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"rrdp/notification.xml": "<notification/>",
		"repo/a/b.roa":          "roa bytes",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientTLS()}}
	defer client.CloseIdleConnections()

	for _, backend := range []string{"go", "nginx"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "nginx" {
				Require(t, "nginx")
			}
			o, err := NewOrigin(OriginConfig{Dir: dir, PKI: pki, Nginx: backend == "nginx"})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					o.Close()
				}
			}()
			base := o.URL()
			if want := fmt.Sprintf("https://localhost:%d/", o.Port()); base != want {
				t.Errorf("URL() = %q, want %q", base, want)
			}
			get := func(method, url string, header ...string) *http.Response {
				t.Helper()
				req, err := http.NewRequest(method, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp
			}

			resp := get("GET", base+"rrdp/notification.xml")
			etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
			if resp.StatusCode != 200 || etag == "" || lastMod == "" {
				t.Fatalf("GET notification: got %d, ETag %q, Last-Modified %q; want 200 with both", resp.StatusCode, etag, lastMod)
			}
			checks := []struct {
				name   string
				method string
				url    string
				header []string
				status int
			}{
				{"if-modified-since", "GET", base + "rrdp/notification.xml", []string{"If-Modified-Since", lastMod}, 304},
				{"if-none-match", "GET", base + "rrdp/notification.xml", []string{"If-None-Match", etag}, 304},
				{"other etag", "GET", base + "rrdp/notification.xml", []string{"If-None-Match", `"other"`}, 200},
				{"head", "HEAD", base + "repo/a/b.roa", nil, 200},
				{"missing", "GET", base + "repo/missing.roa", nil, 404},
				{"127.0.0.1", "GET", fmt.Sprintf("https://127.0.0.1:%d/repo/a/b.roa", o.Port()), nil, 200},
			}
			if o.IPv6() {
				checks = append(checks, struct {
					name   string
					method string
					url    string
					header []string
					status int
				}{"::1", "GET", fmt.Sprintf("https://[::1]:%d/repo/a/b.roa", o.Port()), nil, 200})
			} else {
				t.Log("no ::1 on this host")
			}
			for _, c := range checks {
				if resp := get(c.method, c.url, c.header...); resp.StatusCode != c.status {
					t.Errorf("%s: got status %d, want %d", c.name, resp.StatusCode, c.status)
				}
			}

			counts, err := o.Counts()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{
				"/rrdp/notification.xml 200": 2,
				"/rrdp/notification.xml 304": 2,
				"/repo/a/b.roa 200":          2,
				"/repo/missing.roa 404":      1,
			}
			if o.IPv6() {
				want["/repo/a/b.roa 200"]++
			}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Errorf("Counts() = %v, want %v", counts, want)
			}
			reqs, err := o.Requests()
			if err != nil {
				t.Fatal(err)
			}
			if len(reqs) < 5 || reqs[4] != (Request{Method: "HEAD", Path: "/repo/a/b.roa", Status: 200}) {
				t.Errorf("Requests()[4] = %+v, want the HEAD request", reqs)
			}

			if err := o.Reset(); err != nil {
				t.Fatal(err)
			}
			get("GET", base+"repo/a/b.roa")
			if reqs, err := o.Requests(); err != nil || len(reqs) != 1 {
				t.Errorf("after Reset and one request: got %v (%v), want 1 request", reqs, err)
			}

			client.CloseIdleConnections()
			closed = true
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", o.Port())); err == nil {
				c.Close()
				t.Error("origin still accepts connections after Close")
			}
		})
	}
}

func TestOriginPortInUse(t *testing.T) {
	pki, err := NewPKI(t.TempDir(), PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, backend := range []string{"go", "nginx"} {
		t.Run(backend, func(t *testing.T) {
			_, err := NewOrigin(OriginConfig{Dir: t.TempDir(), PKI: pki, Port: port, Nginx: backend == "nginx"})
			if err == nil || !strings.Contains(err.Error(), "in use") {
				t.Errorf("got error %v, want one saying the port is in use", err)
			}
		})
	}
}
