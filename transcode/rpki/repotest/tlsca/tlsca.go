// Package tlsca implements a throwaway TLS certification authority: a
// self-signed CA and one server certificate issued by it (X.509, RFC 5280),
// written as PEM files, for the HTTPS origins of tests, benchmarks and the
// demo. It imports nothing of package testing, so the shipped binary may
// link it.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Default validity of the test PKI: it covers both the faked clock of the
// relying parties (2023 for the Krill data set) and the real clock.
var (
	defaultNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	defaultNotAfter  = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Config configures New. The zero value works.
type Config struct {
	// NotBefore and NotAfter bound the validity of both certificates.
	// Zero values mean 2020-01-01 and 2040-01-01 (UTC), which cover the
	// faked clock of the relying parties as well as the real one.
	NotBefore, NotAfter time.Time
	// Hosts are the DNS names and IP addresses the server certificate is
	// valid for. Empty means localhost, 127.0.0.1 and ::1.
	Hosts []string
}

// PKI is a private certification authority and one server certificate
// issued by it, written as PEM files into one directory.
type PKI struct {
	// CAFile is the self-signed CA certificate (ca.pem, mode 0644). Both
	// relying parties trust it and nothing else.
	CAFile string
	// CertFile is the server certificate followed by nothing else
	// (server.pem); KeyFile is its PKCS #8 private key (server-key.pem).
	CertFile, KeyFile string
	// CA is the parsed CA certificate.
	CA *x509.Certificate

	cert tls.Certificate
}

// New creates an ECDSA P-256 CA and a server certificate for the hosts of
// cfg in dir. Validity and serial numbers come from cfg, so only the keys
// and signatures differ between calls.
func New(dir string, cfg Config) (*PKI, error) {
	if cfg.NotBefore.IsZero() {
		cfg.NotBefore = defaultNotBefore
	}
	if cfg.NotAfter.IsZero() {
		cfg.NotAfter = defaultNotAfter
	}
	if !cfg.NotAfter.After(cfg.NotBefore) {
		return nil, fmt.Errorf("create tls ca: NotAfter %v is not after NotBefore %v", cfg.NotAfter, cfg.NotBefore)
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: generate ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rrdp-proxy test CA"},
		NotBefore:             cfg.NotBefore,
		NotAfter:              cfg.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: sign ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: parse ca certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cfg.Hosts[0]},
		NotBefore:    cfg.NotBefore,
		NotAfter:     cfg.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range cfg.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: sign server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("create tls ca: marshal server key: %w", err)
	}

	p := &PKI{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		CA:       ca,
		cert:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}
	files := []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{p.CAFile, "CERTIFICATE", caDER, 0o644},
		{p.CertFile, "CERTIFICATE", der, 0o644},
		{p.KeyFile, "PRIVATE KEY", keyDER, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, f.mode); err != nil {
			return nil, fmt.Errorf("create tls ca: %w", err)
		}
		// WriteFile applies the umask; the relying parties read ca.pem
		// after dropping privileges, so set the mode explicitly.
		if err := os.Chmod(f.path, f.mode); err != nil {
			return nil, fmt.Errorf("create tls ca: %w", err)
		}
	}
	return p, nil
}

// ServerTLS returns a new TLS configuration that presents the server
// certificate.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.cert},
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientTLS returns a new TLS configuration that trusts only the CA.
func (p *PKI) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
