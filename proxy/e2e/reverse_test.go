package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestReverseKrill is the deployment rrdp-proxy exists for, with a real
// publication server's files: Krill's repository (../shared/realdata),
// unmodified, served by nginx over plain HTTP on an internal loopback
// port; `rrdp-proxy serve` in reverse mode under the repository's public
// name, origin https://localhost:3000/rrdp/notification.xml with
// fetch_from that port, TLS on localhost:3000, as an RIR would put it
// behind its host name. The served notification, snapshot and delta are
// the origin's bytes; the TA certificate the TAL names comes through the
// proxy (pass-through); rpki-client and FORT, with the set's own TAL and
// their clock at 2023-02-14, output the oracle's VRPs.
func TestReverseKrill(t *testing.T) {
	if testing.Short() {
		t.Skip("relying parties take a while")
	}
	rp.Require(t, rpTools...)
	good := realdata.Path(t, "krill-sync", "test-resources", "validation", "good")
	oracle := realdata.Path(t, "krill-sync", "oracle")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The publication server's host as it is on disk: the RRDP files and
	// the TA certificate where the TAL names it (symbolic links to the
	// data set's files, unmodified).
	host := t.TempDir()
	if err := os.Symlink(filepath.Join(good, "rrdp"), filepath.Join(host, "rrdp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(host, "ta"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(good, "ta.cer"), filepath.Join(host, "ta", "ta.cer")); err != nil {
		t.Fatal(err)
	}
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: host, PKI: pki, Nginx: true, NoIPv6: true, NginxBench: &rp.NginxBench{HTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	internal := strings.TrimSuffix(origin.HTTPURL(), "/")

	proc, client := startReverse(t, pki, internal, "")
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := client.Get("https://localhost:3000" + path)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// The origin's bytes, at the origin's paths.
	for _, rel := range []string{
		"rrdp/notification.xml",
		"rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/snapshot.xml",
		"rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/delta.xml",
		"ta/ta.cer",
	} {
		want, err := os.ReadFile(filepath.Join(host, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		code, got := get("/" + rel)
		if code != 200 || !bytes.Equal(got, want) {
			t.Errorf("/%s through the proxy: got %d, %d bytes; want 200 and the origin's %d bytes", rel, code, len(got), len(want))
		}
	}
	if code, _ := get("/rrdp/notification.bin"); code != 200 {
		t.Errorf("notification.bin beside the origin's: got %d", code)
	}

	opts := rp.Options{TAL: filepath.Join(good, "ta.tal"), CAFile: pki.CAFile, Time: time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)}
	validateVRPs(t, ctx, "through the reverse proxy", opts, t.TempDir(), krillOracle(t, oracle))
	if log := proc.log.String(); strings.Contains(log, "level=ERROR") {
		t.Errorf("errors in the proxy's log:\n%s", log)
	}
}

// startReverse runs `rrdp-proxy serve` in reverse mode at
// https://localhost:3000, the name the repository's certificates and TAL
// use, for the repository "rir" whose notification is
// https://localhost:3000/rrdp/notification.xml, fetched from internal
// (http://127.0.0.1:PORT, nginx's plain HTTP); extra is appended to the
// repository's table. It checks that `config check` explains fetch_from,
// waits until the repository is ready and returns the process and a
// client of the proxy. The lock on port 3000 keeps other packages' tests
// off it until the test ends.
func startReverse(t *testing.T, pki *rp.PKI, internal, extra string) (*serveProc, *http.Client) {
	t.Helper()
	unlock, err := rp.LockPort(3000, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	lns, err := rp.Listen(3000, 2*time.Minute)
	if err != nil {
		t.Fatalf("the proxy must listen at localhost:3000, which the repository's certificates name: %v", err)
	}
	var addrs []string
	for _, ln := range lns {
		addrs = append(addrs, fmt.Sprintf("%q", ln.Addr().String()))
		ln.Close() // the process binds them
	}
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	conf := fmt.Sprintf(`[server]
listen = []
tls_listen = [%s]
tls_cert = %q
tls_key = %q
node = "rir"

[cache]
memory = "64MiB"

[[repository]]
name = "rir"
origin = "https://localhost:3000/rrdp/notification.xml"
fetch_from = %q
mode = "reverse"
hosts = ["localhost"]
poll_interval = "1s"
max_backoff = "2s"
%s`, strings.Join(addrs, ", "), pki.CertFile, pki.KeyFile, internal, extra)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command(bin, "config", "check", file)
	if out, err := check.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("fetches https://localhost:3000 from "+internal)) {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	proc := spawnServe(t, "rir", file)
	client := localhostClient(pki, "127.0.0.1:3000", 30*time.Second)
	t.Cleanup(client.CloseIdleConnections)
	proc.waitReady(t, client, "https://localhost:3000/readyz?repo=rir")
	return proc, client
}
