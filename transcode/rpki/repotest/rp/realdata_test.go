package rp

import (
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Krill data set: valid on 2023-02-14 only, URLs under
// https://localhost:3000/.
const (
	krillPort     = 3000
	krillBase     = "https://localhost:3000/"
	krillSession  = "cd0c701d-ff09-4e95-8f2a-fa24de875fb5"
	krillSnapshot = "/rrdp/cd0c701d-ff09-4e95-8f2a-fa24de875fb5/3/0ab6e84be3ec9561/snapshot.xml"
)

var krillTime = time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)

// krillTree lays out the Krill "good" repository by URL path, with
// symbolic links into the real data: the TAL names /ta/ta.cer, which the
// data keeps at the top of the folder.
func krillTree(t *testing.T, good string) string {
	t.Helper()
	tree := t.TempDir()
	links := map[string]string{
		"ta/ta.cer":             "ta.cer",
		"rrdp/notification.xml": "rrdp/notification.xml",
		"rrdp/" + krillSession:  "rrdp/" + krillSession,
	}
	for link, target := range links {
		p := filepath.Join(tree, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(good, target), p); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// publishSerial4 moves the repository in tree from serial 3 to serial 4
// with a delta that republishes one ROA unchanged (publish with the hash of
// the object it replaces), plus the matching snapshot and notification.
// It returns the URL path of the new delta.
func publishSerial4(t *testing.T, tree string) string {
	t.Helper()
	snap, err := os.ReadFile(filepath.Join(tree, krillSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	uri, content := firstROA(t, snap)
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(content), ""))
	if err != nil {
		t.Fatalf("snapshot: base64 of %s: %v", uri, err)
	}
	objHash := sha256.Sum256(der)

	oldRoot := []byte(`serial="3"`)
	if !bytes.Contains(snap[:bytes.IndexByte(snap, '>')], oldRoot) {
		t.Fatalf("snapshot root element has no %s", oldRoot)
	}
	snap4 := bytes.Replace(snap, oldRoot, []byte(`serial="4"`), 1)
	delta4 := fmt.Sprintf(`<delta xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="%s" serial="4">
  <publish uri="%s" hash="%x">%s</publish>
</delta>
`, krillSession, uri, objHash, strings.TrimSpace(content))

	const dir = "/rrdp/" + krillSession + "-4/"
	files := map[string][]byte{
		dir + "snapshot.xml": snap4,
		dir + "delta.xml":    []byte(delta4),
	}
	delta3, err := os.ReadFile(filepath.Join(tree, "rrdp", krillSession, "3", "0ab6e84be3ec9561", "delta.xml"))
	if err != nil {
		t.Fatal(err)
	}
	notif := fmt.Sprintf(`<notification xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="%s" serial="4">
  <snapshot uri="%s" hash="%s"/>
  <delta serial="4" uri="%s" hash="%s"/>
  <delta serial="3" uri="%s" hash="%s"/>
</notification>
`, krillSession,
		krillBase+strings.TrimPrefix(dir, "/")+"snapshot.xml", sha256Hex(snap4),
		krillBase+strings.TrimPrefix(dir, "/")+"delta.xml", sha256Hex([]byte(delta4)),
		krillBase+"rrdp/"+krillSession+"/3/0ab6e84be3ec9561/delta.xml", sha256Hex(delta3))
	for p, data := range files {
		full := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Replace the link by a file, atomically.
	tmp := filepath.Join(tree, "rrdp", ".notification.xml")
	if err := os.WriteFile(tmp, []byte(notif), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(tree, "rrdp", "notification.xml")); err != nil {
		t.Fatal(err)
	}
	return dir + "delta.xml"
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// firstROA returns the URI and the base64 content of the first ROA
// published in an RRDP snapshot.
func firstROA(t *testing.T, snapshot []byte) (uri, content string) {
	t.Helper()
	var s struct {
		Publish []struct {
			URI     string `xml:"uri,attr"`
			Content string `xml:",chardata"`
		} `xml:"publish"`
	}
	if err := xml.Unmarshal(snapshot, &s); err != nil {
		t.Fatalf("parse snapshot: %v", err)
	}
	for _, p := range s.Publish {
		if strings.HasSuffix(p.URI, ".roa") {
			return p.URI, p.Content
		}
	}
	t.Fatal("snapshot publishes no ROA")
	return "", ""
}

// krillOracle reads the VRPs that rpki-client 8.2 and FORT 1.5.4 output for
// the data set and checks that they agree.
func krillOracle(t *testing.T, rd string) []rpki.VRP {
	t.Helper()
	oracle := filepath.Join(rd, "krill-sync", "oracle")
	rc, err := ReadVRPCSV(filepath.Join(oracle, "rpki-client-8.2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fort, err := ReadVRPCSV(filepath.Join(oracle, "fort-1.5.4.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if d := rpki.DiffVRPs(fort, rc, 5); d != "" {
		t.Fatalf("oracles disagree: fort vs rpki-client:\n%s", d)
	}
	if len(rc) != 100 {
		t.Fatalf("oracle has %d VRPs, want 100", len(rc))
	}
	return rc
}

// checkRun fails the test unless res is a clean run with exactly want.
func checkRun(t *testing.T, what string, res *Result, err error, want []rpki.VRP) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: %s took %v, %d VRPs", what, res.RP, res.Elapsed.Round(time.Millisecond), len(res.VRPs))
	if err := res.Err(); err != nil {
		t.Errorf("%s: %v\nstdout:\n%s\nstderr:\n%s", what, err, res.Stdout, res.Stderr)
	}
	if d := rpki.DiffVRPs(res.VRPs, want, 10); d != "" {
		t.Errorf("%s: VRPs differ from the oracle: %s", what, d)
	}
}

// checkFetched fails the test unless the origin answered exactly the
// requests of want ("PATH STATUS" -> count) for the RRDP files, ignoring
// the TA certificate.
func checkFetched(t *testing.T, what string, o *Origin, want map[string]int) {
	t.Helper()
	got, err := o.Counts()
	if err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if strings.HasPrefix(k, "/ta/ta.cer ") {
			delete(got, k)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: origin answered %v, want %v", what, got, want)
	}
}

// TestKrillGood runs both relying parties against the Krill "good"
// repository, served by the Go origin and by nginx, and checks that each
// outputs the 100 VRPs of the oracle; then it publishes serial 4 and
// checks that each fetches the notification and the new delta, not the
// snapshot, and still outputs the same VRPs.
func TestKrillGood(t *testing.T) {
	rd := realdata.Dir(t)
	good := filepath.Join(rd, "krill-sync", "test-resources", "validation", "good")
	want := krillOracle(t, rd)
	pki, err := NewPKI(t.TempDir(), PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rps := []struct {
		name  string
		tools []string
		run   func(t *testing.T, k krillEnv)
	}{
		{"rpki-client", []string{"root", "unshare", "mount", "faketime", "rpki-client"}, krillRPKIClient},
		{"fort", []string{"fort", "openssl", "faketime"}, krillFORT},
	}
	for _, backend := range []string{"go", "nginx"} {
		for _, rp := range rps {
			t.Run(backend+"/"+rp.name, func(t *testing.T) {
				Require(t, rp.tools...)
				if backend == "nginx" {
					Require(t, "nginx")
				}
				tree := krillTree(t, good)
				o, err := NewOrigin(OriginConfig{
					Dir: tree, PKI: pki, Port: krillPort, PortWait: 30 * time.Second,
					Nginx: backend == "nginx",
				})
				if err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := o.Close(); err != nil {
						t.Error(err)
					}
				}()
				rp.run(t, krillEnv{
					origin: o,
					tree:   tree,
					want:   want,
					opts: Options{
						TAL:      filepath.Join(good, "ta.tal"),
						CAFile:   pki.CAFile,
						CacheDir: t.TempDir(),
						Time:     krillTime,
					},
				})
			})
		}
	}
}

// krillEnv is what a relying party's part of TestKrillGood works with.
type krillEnv struct {
	origin *Origin
	tree   string // the directory the origin serves
	want   []rpki.VRP
	opts   Options
}

func krillRPKIClient(t *testing.T, k krillEnv) {
	o, opts, want := k.origin, k.opts, k.want
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	res, err := RunRPKIClient(ctx, opts)
	checkRun(t, "first run", res, err, want)
	checkFetched(t, "first run", o, map[string]int{
		"/rrdp/notification.xml 200": 1,
		krillSnapshot + " 200":       1,
	})

	if err := o.Reset(); err != nil {
		t.Fatal(err)
	}
	res, err = RunRPKIClient(ctx, opts)
	checkRun(t, "unchanged run", res, err, want)
	checkFetched(t, "unchanged run", o, map[string]int{"/rrdp/notification.xml 304": 1})

	delta := publishSerial4(t, k.tree)
	if err := o.Reset(); err != nil {
		t.Fatal(err)
	}
	res, err = RunRPKIClient(ctx, opts)
	checkRun(t, "delta run", res, err, want)
	checkFetched(t, "delta run", o, map[string]int{
		"/rrdp/notification.xml 200": 1,
		delta + " 200":               1,
	})
}

func krillFORT(t *testing.T, k krillEnv) {
	o, opts, want := k.origin, k.opts, k.want
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	res, err := RunFORT(ctx, opts)
	checkRun(t, "standalone run", res, err, want)
	checkFetched(t, "standalone run", o, map[string]int{
		"/rrdp/notification.xml 200": 1,
		krillSnapshot + " 200":       1,
	})

	// Server mode keeps the RRDP serial between cycles. FORT idles for a
	// second after each cycle: publishing and resetting the log right
	// after Next returns completes before the next cycle starts.
	if err := o.Reset(); err != nil {
		t.Fatal(err)
	}
	f, err := StartFORT(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	res, err = f.Next(ctx)
	checkRun(t, "first cycle", res, err, want)

	delta := publishSerial4(t, k.tree)
	if err := o.Reset(); err != nil {
		t.Fatal(err)
	}
	res, err = f.Next(ctx)
	checkRun(t, "delta cycle", res, err, want)
	checkFetched(t, "delta cycle", o, map[string]int{
		"/rrdp/notification.xml 200": 1,
		delta + " 200":               1,
	})
}

// TestKrillExpired runs both relying parties on the real clock, at which
// every object of the Krill data set has expired, and checks that the
// failure shows in Result.Err and in the VRPs: the log classification
// catches what a clean run must not print.
func TestKrillExpired(t *testing.T) {
	rd := realdata.Dir(t)
	good := filepath.Join(rd, "krill-sync", "test-resources", "validation", "good")
	pki, err := NewPKI(t.TempDir(), PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tools   []string
		run     func(context.Context, Options) (*Result, error)
		problem string // a substring of one of the problems
	}{
		{"rpki-client", []string{"root", "unshare", "mount", "rpki-client"}, RunRPKIClient, "CRL has expired"},
		{"fort", []string{"fort", "openssl"}, RunFORT, "CRL is stale/expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Require(t, tt.tools...)
			o, err := NewOrigin(OriginConfig{
				Dir: krillTree(t, good), PKI: pki, Port: krillPort, PortWait: 30 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			res, err := tt.run(ctx, Options{TAL: filepath.Join(good, "ta.tal"), CAFile: pki.CAFile})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.VRPs) != 0 {
				t.Errorf("got %d VRPs, want 0", len(res.VRPs))
			}
			rerr := res.Err()
			if rerr == nil {
				t.Fatalf("Err() = nil, want an error\nstdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
			}
			if !strings.Contains(rerr.Error(), tt.problem) {
				t.Errorf("Err() = %v, want it to contain %q", rerr, tt.problem)
			}
		})
	}
}
