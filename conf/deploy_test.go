package conf

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/tlsca"
)

// credentials are the files deploy/rrdp-proxy.service.d/tls.conf hands to
// the service, which single.toml reads.
var credentials = map[string]string{
	"/run/credentials/rrdp-proxy.service/tls.crt": "tls.crt",
	"/run/credentials/rrdp-proxy.service/tls.key": "tls.key",
}

// exampleCopy copies the example configuration f into a directory of its
// own with the TLS files it names, generated: relative ones beside it, the
// systemd credentials (rewritten to point there) in place of the
// drop-in's. It returns the copy's path.
func exampleCopy(t *testing.T, f string) string {
	t.Helper()
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pki, err := tlsca.New(t.TempDir(), tlsca.Config{Hosts: []string{"rpki-mirror.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for path, name := range credentials {
		s = strings.ReplaceAll(s, `"`+path+`"`, `"`+name+`"`)
	}
	copyFile := func(src, rel string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		for key, src := range map[string]string{"tls_cert": pki.CertFile, "tls_key": pki.KeyFile} {
			if v, ok := strings.CutPrefix(line, key+" = "); ok {
				rel := strings.Trim(v, `"`)
				if filepath.IsAbs(rel) {
					t.Fatalf("%s: %s = %s: an absolute path this test cannot provide", f, key, v)
				}
				copyFile(src, rel)
			}
		}
	}
	out := filepath.Join(dir, filepath.Base(f))
	if err := os.WriteFile(out, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeployExamples loads every example configuration of deploy/, with
// the certificate files it names in place: each must serve relying
// parties https URIs as written, with no allow_http_base.
func TestDeployExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"single.toml": false, "reverse.toml": false, "mirror.toml": false, "fleet-node.toml": false, "container.toml": false}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(exampleCopy(t, f))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(c.Repositories) == 0 {
				t.Error("no repository")
			}
			if c.Server.AllowHTTPBase {
				t.Error("allow_http_base is set: relying parties would get http URIs")
			}
			for i := range c.Repositories {
				r := &c.Repositories[i]
				if b := c.BaseURI(r); !strings.HasSuffix(b, "/") || !strings.HasPrefix(b, "https://") {
					t.Errorf("%s: base URI %q, want https", r.Name, b)
				}
			}
			if len(c.Server.TLSListen) > 0 && c.Server.Certificate == nil {
				t.Error("tls_listen without a loaded certificate")
			}
		})
		want[filepath.Base(f)] = true
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("deploy/examples/%s is missing", name)
		}
	}
}

// TestMirrorExample checks the IXP example's URLs: the five RIRs under the
// mirror's host name.
func TestMirrorExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "deploy", "examples", "mirror.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"afrinic": "https://rpki-mirror.ixp.example/rrdp.afrinic.net/",
		"apnic":   "https://rpki-mirror.ixp.example/rrdp.apnic.net/",
		"arin":    "https://rpki-mirror.ixp.example/rrdp.arin.net/",
		"lacnic":  "https://rpki-mirror.ixp.example/rrdp.lacnic.net/rrdp/",
		"ripe":    "https://rpki-mirror.ixp.example/rrdp.ripe.net/",
	}
	if len(c.Repositories) != len(want) {
		t.Fatalf("got %d repositories, want %d", len(c.Repositories), len(want))
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if got := c.BaseURI(r); got != want[r.Name] {
			t.Errorf("%s: got %q, want %q", r.Name, got, want[r.Name])
		}
	}
}

// TestContainerExampleListens checks that the container's example listens
// on every address of the container, which docker run -p publishes: a
// loopback address would be unreachable from outside the container.
func TestContainerExampleListens(t *testing.T) {
	c, err := Load(exampleCopy(t, filepath.Join("..", "deploy", "examples", "container.toml")))
	if err != nil {
		t.Fatal(err)
	}
	addrs := append(append([]string(nil), c.Server.Listen...), c.Server.TLSListen...)
	if len(c.Server.TLSListen) == 0 {
		t.Error("container.toml serves no TLS")
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("%q: %v", a, err)
		}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			t.Errorf("container.toml listens on %q: not reachable through docker run -p", a)
		}
	}
}
