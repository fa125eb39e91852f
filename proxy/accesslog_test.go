package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAccessLogFormats sends real requests through the listener and checks
// the line each format writes, a hostile User-Agent included.
func TestAccessLogFormats(t *testing.T) {
	for _, format := range []string{"combined", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf syncBuffer
			e := newEnvConfig(t, ModeMirror, tlsNone, func(c *Config) { c.AccessLog, c.AccessLogFormat = &buf, format })
			e.sync()
			// net/http refuses to send a control character: write the
			// request by hand.
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET %s?x=1 HTTP/1.1\r\nHost: %s\r\nUser-Agent: evil\" \xff\r\nReferer: https://r.example/\r\nConnection: close\r\n\r\n", e.path("notification.xml"), e.addr)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("got %d, %v", resp.StatusCode, err)
			}
			e.get("HEAD", "/nothing")
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
			}
			uri := e.path("notification.xml") + "?x=1"
			if format == "combined" {
				re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET ` + regexp.QuoteMeta(uri) +
					` HTTP/1\.1" 200 ` + itoa(int64(len(body))) + ` "https://r\.example/" "evil\\" \\xFF"$`)
				if !re.MatchString(lines[0]) {
					t.Errorf("line %q does not match %s", lines[0], re)
				}
				if want := `"HEAD /nothing HTTP/1.1" 404 - "-" "Go-http-client/1.1"`; !strings.HasSuffix(lines[1], want) {
					t.Errorf("line %q, want it to end in %q", lines[1], want)
				}
				return
			}
			var rec accessRecord
			if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
				t.Fatalf("line %q: %v", lines[0], err)
			}
			if rec.Method != "GET" || rec.URI != uri || rec.Status != 200 || rec.Bytes != len(body) || rec.Repo != "test" ||
				rec.UserAgent != "evil\" \ufffd" || rec.Remote != "127.0.0.1" {
				t.Errorf("record %+v", rec)
			}
			if _, err := time.ParseDuration(rec.Duration); err != nil {
				t.Errorf("duration %q: %v", rec.Duration, err)
			}
			if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
				t.Errorf("time %q: %v", rec.Time, err)
			}
		})
	}
}
