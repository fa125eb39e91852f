package redisstore

import (
	"context"
	"crypto/sha256"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestTLS talks to a redis-server that accepts TLS only: with CAPEM the
// store connects and works; without it (the system's roots) the server's
// certificate is refused.
func TestTLS(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found and CI is set: %v", err)
		}
		t.Skipf("redis-server not found: %v", err)
	}
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", pki.CertFile, "--tls-key-file", pki.KeyFile, "--tls-ca-cert-file", pki.CAFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	st, err := New(Config{URL: url, CAPEM: ca, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := st.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with TLS on port %d: %v", port, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for readiness with a deadline
	}
	b := content(10_000, 3)
	if err := st.PutBlob(ctx, sha256.Sum256(b), b); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetBlob(ctx, sha256.Sum256(b)); err != nil || len(got) != len(b) {
		t.Fatalf("get blob over TLS: got %d bytes, %v", len(got), err)
	}

	plain, err := New(Config{URL: "rediss://127.0.0.1:" + strconv.Itoa(port) + "/0", DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Ping(ctx); err == nil {
		t.Fatal("ping with the system's roots: got no error, want the unknown authority refused")
	}
	if _, err := New(Config{URL: url, CAPEM: []byte("no pem")}); err == nil {
		t.Fatal("CAPEM without a certificate: got no error")
	}
}
