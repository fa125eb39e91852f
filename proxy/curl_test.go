package proxy

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// TestCurl checks the HTTP rules with curl, a client written apart from
// Go's.
func TestCurl(t *testing.T) {
	rp.Require(t, "curl")
	e := newEnv(t, ModeReverse)
	h := e.sync()
	snap := fileOf(t, h, "snapshot", "xml")
	notif, _ := e.get("GET", e.path("notification.xml"))
	etag, lastMod := notif.Header.Get("ETag"), notif.Header.Get("Last-Modified")
	size := snap.Size
	u := func(p string) string { return e.url + e.path(p) }

	tests := []struct {
		name   string
		args   []string
		status string
		want   []string // lines or substrings of the headers, lowercase
	}{
		{"get", []string{u("notification.xml")}, "200", []string{"etag: " + etag, "cache-control: public, max-age=60", "vary: accept-encoding", "content-type: application/xml"}},
		{"if-none-match", []string{"-H", "If-None-Match: " + etag, u("notification.xml")}, "304", []string{"etag: " + etag}},
		{"if-modified-since", []string{"-H", "If-Modified-Since: " + lastMod, u("notification.xml")}, "304", nil},
		{"compressed", []string{"--compressed", u("notification.xml")}, "200", []string{"content-encoding: gzip"}},
		{"range", []string{"-r", "0-99", u(snap.Path)}, "206", []string{"content-range: bytes 0-99/" + itoa(size), "content-length: 100"}},
		{"range 416", []string{"-r", itoa(size+10) + "-", u(snap.Path)}, "416", []string{"content-range: bytes */" + itoa(size)}},
		{"head", []string{"-I", u(snap.Path)}, "200", []string{"content-length: " + itoa(size), "cache-control: public, max-age=31536000, immutable"}},
		{"post", []string{"-X", "POST", u("notification.xml")}, "405", []string{"allow: get, head"}},
		{"delete", []string{"-X", "DELETE", u("notification.xml")}, "405", []string{"allow: get, head"}},
		{"unknown", []string{u("nothing.xml")}, "404", nil},
		{"as a forward proxy", []string{"-x", e.url, "http://example.com/"}, "404", nil},
		{"forward proxy to the origin", []string{"-x", e.url, e.origin.URL() + "rrdp/notification.xml", "--proxy-insecure", "-k"}, "000", []string{"http/1.1 405", "connect tunnel failed"}},
		{"metrics", []string{e.url + "/metrics"}, "200", []string{"content-type: text/plain; version=0.0.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"-sS", "-o", "/dev/null", "-D", "-", "-w", "\ncode=%{http_code}\n", "--max-time", "10"}, tt.args...)
			out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput()
			s := strings.ToLower(string(out))
			if err != nil && !strings.Contains(s, "code=") {
				t.Fatalf("curl %v: %v\n%s", tt.args, err, out)
			}
			if !strings.Contains(s, "code="+tt.status+"\n") {
				t.Fatalf("curl %v: want status %s, got\n%s", tt.args, tt.status, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(s, strings.ToLower(w)) {
					t.Errorf("curl %v: want %q in\n%s", tt.args, w, out)
				}
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
