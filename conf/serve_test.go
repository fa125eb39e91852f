package conf

import (
	"strings"
	"testing"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
)

// TestCheckAgreesWithServer: what Parse accepts, proxy.New accepts with the
// same repositories; what the server would refuse, Parse refuses, naming
// the key and line.
func TestCheckAgreesWithServer(t *testing.T) {
	const srv = "[server]\nlisten = [\"127.0.0.1:8080\"]\n"
	const rev = "[[repository]]\nname = \"a\"\norigin = \"https://o.example/rrdp/notification.xml\"\nmode = \"reverse\"\n"
	tests := []struct {
		name string
		doc  string
		err  string // "" when the configuration is valid
	}{
		{"mirror without mirror_base", srv + minimal,
			"test.toml:3: server.mirror_base: repository[0] is in mirror mode (line 3)"},
		{"mirror with https mirror_base", srv + "mirror_base = \"https://m.example.net/\"\n" + minimal, ""},
		{"http mirror_base", srv + "mirror_base = \"http://m.example.net/\"\n" + minimal,
			"test.toml:3: server.mirror_base: want an https URL"},
		{"http mirror_base opted in", srv + "mirror_base = \"http://m.example.net/\"\nallow_http_base = true\n" + minimal, ""},
		{"http base", srv + rev + "hosts = [\"a.example\"]\nbase = \"http://a.example/rrdp/\"\n",
			"test.toml:8: repository[0].base: want an https URL (relying parties expect https, RFC 8182), got \"http://a.example/rrdp/\"; server.allow_http_base = true accepts http"},
		{"http base opted in", "[server]\nallow_http_base = true\n" + rev + "hosts = [\"a.example\"]\nbase = \"http://a.example/rrdp/\"\n", ""},
		{"host in two repositories", srv + rev + "hosts = [\"a.example\", \"b.example\"]\n" +
			"[[repository]]\nname = \"b\"\norigin = \"https://p.example/rrdp/notification.xml\"\nmode = \"reverse\"\nhosts = [\"b.example\"]\n",
			`test.toml:12: repository[1].hosts: repositories "a" and "b": same route b.example/rrdp/`},
		{"host twice in one repository", srv + rev + "hosts = [\"a.example\", \"a.example\"]\n",
			`test.toml:7: repository[0].hosts: repositories "a" and "a": same route a.example/rrdp/`},
		{"host with and without port", srv + rev + "hosts = [\"a.example:8443\"]\n" +
			"[[repository]]\nname = \"b\"\norigin = \"https://p.example/rrdp/notification.xml\"\nmode = \"reverse\"\nhosts = [\"a.example\"]\n", ""},
		{"notification_max_age zero", srv + "notification_max_age = \"0s\"\n" + rev + "hosts = [\"a.example\"]\n",
			"test.toml:3: server.notification_max_age: want at least 1s, got 0s"},
		{"chunk_size below 64KiB", srv + "[cache.redis]\nchunk_size = \"1KiB\"\n" + rev + "hosts = [\"a.example\"]\n",
			"test.toml:4: cache.redis.chunk_size: want a size from 64KiB to 256MiB, got 1KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "test.toml")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse: got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			ch, err := cache.New(cache.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			pc := proxy.Config{Cache: ch, AllowHTTPBase: c.Server.AllowHTTPBase}
			for i := range c.Repositories {
				pc.Repos = append(pc.Repos, c.Route(&c.Repositories[i]))
			}
			s, err := proxy.New(pc)
			if err != nil {
				t.Fatalf("conf accepts, proxy.New refuses: %v", err)
			}
			s.Shutdown(t.Context())
		})
	}
}
