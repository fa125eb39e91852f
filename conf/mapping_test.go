package conf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/diskstore"
	"github.com/irpki/rrdp-proxy/cache/redisstore"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// writeCert writes a self-signed certificate and its key as PEM files in
// dir and returns their names.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestFilesAndMappings loads a file naming a CA, a TLS pair and a state
// directory by relative names, and hands every mapping to the real
// constructor.
func TestFilesAndMappings(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir)
	t.Setenv(RedisPasswordEnv, "pw")
	path := filepath.Join(dir, "rrdp-proxy.toml")
	doc := `
[server]
listen = ["127.0.0.1:8080"]
tls_listen = ["127.0.0.1:8443"]
tls_cert = "cert.pem"
tls_key = "key.pem"
[cache]
memory = "64MiB"
state_dir = "state"
disk = "3GiB"
[cache.redis]
url = "rediss://localhost:6380/0"
tls_ca_file = "cert.pem"
read_timeout = "5s"
[[repository]]
name = "internal"
origin = "https://publication.internal:8443/rrdp/notification.xml"
mode = "reverse"
hosts = ["rrdp.example.net"]
ca_file = "cert.pem"
min_rate = "0"
max_delta_size = "64MiB"
poll_interval = "2m"
`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Server.Certificate == nil {
		t.Error("server certificate not loaded")
	}
	r := &c.Repositories[0]
	if len(r.CAPEM) == 0 {
		t.Error("ca_file not read")
	}

	uc := r.Upstream()
	if uc.MinRate >= 0 || uc.MaxDeltaSize != 64<<20 || uc.ConnectTimeout != 10*time.Second {
		t.Errorf("upstream config: got %+v, want MinRate < 0, MaxDeltaSize 64 MiB, ConnectTimeout 10s", uc)
	}
	client, err := upstream.New(uc)
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	defer client.Close()

	fc := c.Follow(r)
	if fc.Base != "https://rrdp.example.net/rrdp/" || fc.Repo != "internal" || fc.Interval != 2*time.Minute || fc.Retention != 2*time.Hour {
		t.Errorf("follow config: got %+v", fc)
	}
	fc.Client = client
	if _, err := follow.New(fc); err != nil {
		t.Fatalf("follow.New: %v", err)
	}

	if _, err := cache.New(c.Cache.Config()); err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	dc, ok := c.Cache.Disk()
	if !ok || dc.Dir != filepath.Join(dir, "state") || dc.MaxBytes != 3<<30 {
		t.Fatalf("disk config: got %+v, %v; want the state directory beside the file, 3GiB", dc, ok)
	}
	ds, err := diskstore.Open(dc)
	if err != nil {
		t.Fatalf("diskstore.Open: %v", err)
	}
	if ds.Dir() != dc.Dir {
		t.Errorf("diskstore dir: got %q, want %q", ds.Dir(), dc.Dir)
	}

	rc := c.Cache.Redis.Config()
	if rc.TLS == nil || rc.TLS.RootCAs == nil || rc.TLS.ServerName != "localhost" || rc.Password != "pw" || rc.ReadTimeout != 5*time.Second {
		t.Errorf("redis config: got %+v", rc)
	}
	rs, err := redisstore.New(rc)
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	if err := rs.Close(); err != nil {
		t.Errorf("redisstore Close: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml")); err == nil {
		t.Fatal("Load of a missing file: no error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add(Example())
	f.Add([]byte("[cache]\nredis = { url = \"redis://h:1\", lease_ttl = 5 }\n[[repository]]\nname=\"x\"\n"))
	f.Add([]byte("[server\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			if len(Errors(err)) == 0 {
				t.Fatalf("error %v is not an *Error", err)
			}
			for _, e := range Errors(err) {
				if e.Line < 1 || e.Key == "" {
					t.Fatalf("error without line or key: %v", e)
				}
			}
			return
		}
		for i := range c.Repositories {
			if b := c.BaseURI(&c.Repositories[i]); b == "" || b[len(b)-1] != '/' {
				t.Fatalf("base URI %q of an accepted repository", b)
			}
		}
	})
}

// TestFetchFromMapping: fetch_from reaches the repository's upstream
// client, which then fetches the public origin's URLs from that address
// with the public Host header; the effective settings show it.
func TestFetchFromMapping(t *testing.T) {
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host = r.Host
		w.Write([]byte("<notification/>"))
	}))
	defer srv.Close()
	c := mustParse(t, `
[[repository]]
name = "rir"
origin = "https://rrdp.example.net/rrdp/notification.xml"
fetch_from = "`+srv.URL+`"
mode = "reverse"
hosts = ["rrdp.example.net"]
`)
	r := &c.Repositories[0]
	if r.FetchFrom != srv.URL {
		t.Fatalf("fetch_from: got %q, want %q", r.FetchFrom, srv.URL)
	}
	uc := r.Upstream()
	if uc.Origin != r.Origin || uc.FetchFrom != srv.URL {
		t.Errorf("upstream config: got Origin %q FetchFrom %q, want the repository's", uc.Origin, uc.FetchFrom)
	}
	client, err := upstream.New(uc)
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	defer client.Close()
	resp, err := client.Fetch(context.Background(), upstream.Request{URL: r.Origin})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := resp.ReadAll(); err != nil || string(b) != "<notification/>" || host != "rrdp.example.net" {
		t.Errorf("fetch through fetch_from: got %q, %v with Host %q; want the server's notification with Host rrdp.example.net", b, err, host)
	}
	if want := `fetch_from = "` + srv.URL + `"`; !strings.Contains(string(c.Effective()), want) {
		t.Errorf("effective settings do not show %s", want)
	}
}
