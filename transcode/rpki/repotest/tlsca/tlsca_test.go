package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// fakedTime is the clock under which the relying parties validate the
// Krill data set (faketime).
var fakedTime = time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	p, err := New(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	certPEM, err := os.ReadFile(p.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("server.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{fakedTime, time.Now()} {
		for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: at}); err != nil {
				t.Errorf("verify for %s at %v: %v", host, at, err)
			}
		}
	}
	for file, want := range map[string]os.FileMode{p.CAFile: 0o644, p.CertFile: 0o644, p.KeyFile: 0o600} {
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", file, fi.Mode().Perm(), err, want)
		}
	}
	if _, err := New(dir, Config{NotBefore: fakedTime, NotAfter: fakedTime}); err == nil {
		t.Error("New with an empty validity: got nil error, want one")
	}
}

// TestHandshake serves HTTPS with the files New wrote and fetches through
// ClientTLS, for a host given in Config.Hosts.
func TestHandshake(t *testing.T) {
	p, err := New(t.TempDir(), Config{Hosts: []string{"rrdp.example.net", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatalf("load the written key pair: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{kp}},
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: p.ClientTLS()}, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("get through ClientTLS: %v", err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].DNSNames[0] != "rrdp.example.net" {
		t.Errorf("peer certificate: got %+v, want one for rrdp.example.net", resp.TLS)
	}
	bad := &http.Client{Timeout: 10 * time.Second}
	if _, err := bad.Get("https://" + ln.Addr().String() + "/"); err == nil {
		t.Error("a client trusting only the system roots: got nil error, want an unknown authority")
	}
}
