package conf

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `[[repository]]
name = "ripe"
origin = "https://rrdp.ripe.net/notification.xml"
`

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc), "test.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestMinimalTakesDefaults(t *testing.T) {
	c := mustParse(t, "[server]\nmirror_base = \"https://m.example.net/\"\n"+minimal)
	if got, want := c.Server.Listen, []string{"127.0.0.1:8080"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listen: got %q, want %q", got, want)
	}
	if c.Cache.Redis != nil {
		t.Errorf("redis: got %+v, want none", c.Cache.Redis)
	}
	if c.Server.Node == "" {
		t.Error("node: empty, want the host name")
	}
	// Mirror mode, the default, needs mirror_base: there is no default.
	_, err := Parse([]byte(minimal), "test.toml")
	if want := "test.toml:1: server.mirror_base: repository[0] is in mirror mode (line 1): set server.mirror_base, the public https URL of this server"; err == nil || err.Error() != want {
		t.Errorf("minimal without mirror_base: got %v, want %s", err, want)
	}
	// Every key with a literal default reads back as Keys says.
	values := map[string]reflect.Value{}
	collect(reflect.ValueOf(c).Elem(), "", values)
	for _, k := range Keys() {
		v, ok := values[k.Path()]
		if !ok {
			if k.Table != "cache.redis" && k.Table != "validate" && k.Table != "compact" { // tables absent from the file
				t.Errorf("%s: not in the parsed configuration", k.Path())
			}
			continue
		}
		if strings.ContainsAny(k.Default[:1], `"[0123456789`) && k.Name != "name" && k.Name != "origin" && k.Name != "mirror_base" {
			if got := formatValue(v); got != k.Default {
				t.Errorf("%s: got %s, want the default %s", k.Path(), got, k.Default)
			}
		}
	}
	if got, want := c.Repositories[0].Retention, c.Cache.Retention; got != want {
		t.Errorf("repository retention: got %s, want cache.retention %s", got, want)
	}
}

// collect maps the paths of the leaves of v (first array element only,
// without index) to their values.
func collect(v reflect.Value, path string, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		name := tomlName(t.Field(i))
		if name == "" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct && f.Type() != durationType:
			collect(f, p, out)
		case f.Kind() == reflect.Pointer:
			if !f.IsNil() {
				collect(f.Elem(), p, out)
			}
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			if f.Len() > 0 {
				collect(f.Index(0), p, out)
			}
		default:
			out[p] = f
		}
	}
}

func TestParseValues(t *testing.T) {
	c := mustParse(t, `
[server]
listen = ["127.0.0.1:9000", "[::1]:9000"]
mirror_base = "https://mirror.example.net"
node = "edge-1"
log_format = "json"
log_level = "debug"
admin_listen = "127.0.0.1:9090"
pprof = true
access_log = "json"
access_log_file = "access.log"
[cache]
memory = "1GiB"
state_dir = "state"
retention = "3h"
[cache.redis]
url = "rediss://redis.example.net:6380/2"
username = "proxy"
chunk_size = "1MB"
[[repository]]
name = "lacnic"
origin = "https://rrdp.lacnic.net/rrdp/notification.xml"
formats = ["bin"]
poll_interval = "90s"
min_rate = "0"
max_snapshot_size = 1_000_000
[[repository]]
name = "rir"
origin = "http://10.0.0.5:8080/rrdp/notification.xml"
mode = "reverse"
hosts = ["rrdp.example.net", "rrdp2.example.net:8443"]
retention = "4h"
`)
	if got, want := c.Server.MirrorBase, "https://mirror.example.net/"; got != want {
		t.Errorf("mirror_base: got %q, want %q", got, want)
	}
	if s := c.Server; s.AdminListen != "127.0.0.1:9090" || !s.PProf || s.AccessLog != "json" || s.AccessLogFile != "access.log" {
		t.Errorf("admin_listen, pprof, access_log, access_log_file: got %q, %v, %q, %q", s.AdminListen, s.PProf, s.AccessLog, s.AccessLogFile)
	}
	if got, want := c.Cache.StateDir, "state"; got != want { // test.toml is in "."
		t.Errorf("state_dir: got %q, want %q", got, want)
	}
	if got, want := int64(c.Cache.Memory), int64(1<<30); got != want {
		t.Errorf("memory: got %d, want %d", got, want)
	}
	if got, want := int64(c.Cache.Redis.ChunkSize), int64(1e6); got != want {
		t.Errorf("chunk_size: got %d, want %d", got, want)
	}
	if got, want := c.Cache.Redis.DialTimeout.Duration, time.Second; got != want {
		t.Errorf("dial_timeout default: got %v, want %v", got, want)
	}
	r0, r1 := &c.Repositories[0], &c.Repositories[1]
	if got, want := r0.PollInterval.Duration, 90*time.Second; got != want {
		t.Errorf("poll_interval: got %v, want %v", got, want)
	}
	if got, want := int64(r0.MaxSnapshotSize), int64(1e6); got != want {
		t.Errorf("max_snapshot_size: got %d, want %d", got, want)
	}
	if r0.Serves("xml") || !r0.Serves("bin") {
		t.Errorf("formats: got %q, want only bin", r0.Formats)
	}
	if got, want := r0.Retention.Duration, 3*time.Hour; got != want {
		t.Errorf("retention inherited: got %v, want %v", got, want)
	}
	if got, want := r1.Retention.Duration, 4*time.Hour; got != want {
		t.Errorf("retention override: got %v, want %v", got, want)
	}
	if got, want := c.Server.Level().String(), "DEBUG"; got != want {
		t.Errorf("level: got %s, want %s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // each error, in order
	}{
		{"unknown key", "[server]\nlisten = [\"127.0.0.1:1\"]\nlisen = \"x\"\n" + minimal,
			[]string{`test.toml:3: server.lisen: unknown key (did you mean listen?)`}},
		{"unknown table", "[servr]\nlisten = 1\n" + minimal,
			[]string{`test.toml:1: servr: unknown table (did you mean server?)`}},
		{"unknown repository key", minimal + "pol_interval = \"1m\"\n",
			[]string{`test.toml:4: repository[0].pol_interval: unknown key (did you mean poll_interval?)`}},
		{"bad duration", "[server]\n\nread_timeout = \"ten seconds\"\n" + minimal,
			[]string{`test.toml:3: server.read_timeout: want a duration such as "90s", "30m" or "2h", got "ten seconds"`}},
		{"duration as integer", "[server]\nidle_timeout = 30\n" + minimal,
			[]string{`test.toml:2: server.idle_timeout: want a duration string such as "90s", got the integer 30`}},
		{"bad size", "[cache]\nmemory = \"5 parsecs\"\n" + minimal,
			[]string{`test.toml:2: cache.memory: want a size such as "512MiB", "4GiB", "16MB" or "8KiB" (units B, KiB, MiB, GiB, KB, MB, GB), got "5 parsecs"`}},
		{"zero disk", "[cache]\ndisk = \"0\"\n" + minimal,
			[]string{`test.toml:2: cache.disk: want a positive size, got 0B`}},
		{"wrong type", "[server]\nmax_conns = \"many\"\n" + minimal,
			[]string{`test.toml:2: server.max_conns: want an integer, got the string "many"`}},
		{"list of wrong type", "[server]\nlisten = [8080]\n" + minimal,
			[]string{`test.toml:2: server.listen: want a list of strings, got a list holding the integer`}},
		{"inline table", "[cache]\nredis = { url = \"redis://h:1\", lease_ttl = 5 }\n" + minimal,
			[]string{`test.toml:2: cache.redis.lease_ttl: want a duration string such as "90s", got the integer 5`}},
		{"syntax", "[server\n",
			[]string{`test.toml:1: syntax: expected ']' to close table name (column 8)`}},
		{"table twice", "[server]\n[server]\n" + minimal,
			[]string{`test.toml:2: server: table server already exists (column 2)`}},
		{"key twice", "[server]\nlisten = []\nlisten = []\n" + minimal,
			[]string{`test.toml:3: server.listen: key listen is already defined (column 1)`}},
		{"password in file", "[cache.redis]\nurl = \"redis://127.0.0.1:6379/0\"\npassword = \"hunter2\"\n" + minimal,
			[]string{`test.toml:3: cache.redis.password: the password does not belong in the file: set the environment variable RRDP_PROXY_REDIS_PASSWORD`}},
		{"password in url", "[cache.redis]\nurl = \"redis://:hunter2@127.0.0.1:6379/0\"\n" + minimal,
			[]string{`test.toml:2: cache.redis.url: holds a password: remove it and set the environment variable RRDP_PROXY_REDIS_PASSWORD`}},
		{"no repository", "[server]\n",
			[]string{`test.toml:1: repository: no [[repository]] table: nothing to serve`}},
		{"missing name and origin", "[server]\n[[repository]]\nmode = \"mirror\"\n",
			[]string{
				`test.toml:2: repository[0].name: missing: every repository needs a name`,
				`test.toml:2: repository[0].origin: missing: every repository needs the URL of its notification`,
			}},
		{"several", "[server]\nlog_format = \"xml\"\n[[repository]]\nname = \"Ripe\"\norigin = \"ftp://rrdp.ripe.net/notification.xml\"\nmode = \"reverse\"\njitter = 1.5\n",
			[]string{
				`test.toml:2: server.log_format: want one of text, json, got "xml"`,
				`test.toml:4: repository[0].name: want 1 to 63 of a-z, 0-9 and '-', not at either end, got "Ripe"`,
				`test.toml:5: repository[0].origin: want an http or https URL, got "ftp://rrdp.ripe.net/notification.xml"`,
				`test.toml:3: repository[0].hosts: reverse mode needs the host names the repository is served under`,
				`test.toml:7: repository[0].jitter: want a fraction above 0 and below 1, such as 0.1, got 1.5`,
			}},
		{"duplicate name", minimal + "[[repository]]\nname = \"ripe\"\norigin = \"https://rrdp.arin.net/notification.xml\"\n",
			[]string{`test.toml:5: repository[1].name: "ripe" is already the name of repository[0] (line 2)`}},
		{"same base", "[server]\nmirror_base = \"https://m.example.net/\"\n" + minimal + "[[repository]]\nname = \"ripe2\"\norigin = \"https://rrdp.ripe.net/notification.bin\"\n",
			[]string{`test.toml:8: repository[1].origin: served at https://m.example.net/rrdp.ripe.net/, as repository[0] is`}},
		{"not a notification", "[[repository]]\nname = \"x\"\norigin = \"https://rrdp.ripe.net/snapshot.xml\"\n",
			[]string{`test.toml:3: repository[0].origin: want a URL ending in /notification.xml or /notification.bin, got "https://rrdp.ripe.net/snapshot.xml"`}},
		{"mirror with hosts", minimal + "hosts = [\"rrdp.ripe.net\"]\n",
			[]string{`test.toml:4: repository[0].hosts: applies to reverse mode: mirror repositories are served under server.mirror_base`}},
		{"mirror without base", "[server]\nlisten = [\"0.0.0.0:80\"]\n" + minimal,
			[]string{`test.toml:3: server.mirror_base: repository[0] is in mirror mode (line 3): set server.mirror_base, the public https URL of this server`}},
		{"short retention", "[cache]\nretention = \"10m\"\n" + minimal,
			[]string{`test.toml:2: cache.retention: 10m is below the 2h that relying parties may still need files for (publication server BCP)`}},
		{"tls without cert", "[server]\ntls_listen = [\"127.0.0.1:8443\"]\n" + minimal,
			[]string{`test.toml:2: server.tls_listen: needs tls_cert and tls_key`}},
		{"bad listen", "[server]\nlisten = [\"localhost\"]\n" + minimal,
			[]string{`test.toml:2: server.listen: want host:port such as "127.0.0.1:8080" or "[::]:443", got "localhost"`}},
		{"reverse base off the origin's directory", "[[repository]]\nname = \"x\"\norigin = \"https://rrdp.example.net/rrdp/notification.xml\"\nmode = \"reverse\"\n" +
			"hosts = [\"rrdp.example.net\"]\nbase = \"https://rrdp.example.net/other/\"\n",
			[]string{`test.toml:6: repository[0].base: path "/other/" must be the origin's directory "/rrdp/": reverse mode serves the repository at the origin's own paths`}},
		{"ca file missing", "[[repository]]\nname = \"x\"\norigin = \"https://rrdp.example.net/notification.xml\"\nca_file = \"/nonexistent/ca.pem\"\n",
			[]string{`test.toml:4: repository[0].ca_file: open /nonexistent/ca.pem: no such file or directory`}},
		{"fetch_from", "[[repository]]\nname = \"a\"\norigin = \"https://rrdp.example.net/rrdp/notification.xml\"\nfetch_from = \"ftp://10.0.0.5\"\n" +
			"[[repository]]\nname = \"b\"\norigin = \"https://rrdp.example.org/rrdp/notification.xml\"\nfetch_from = \"http://10.0.0.5:8081/rrdp/\"\n" +
			"[[repository]]\nname = \"c\"\norigin = \"https://rrdp.example.com/rrdp/notification.xml\"\nfetch_from = \"https://user@10.0.0.5\"\n" +
			"[[repository]]\nname = \"d\"\norigin = \"https://rrdp.example.de/rrdp/notification.xml\"\nfetch_from = \"http://10.0.0.5?x=1\"\n" +
			"[[repository]]\nname = \"e\"\norigin = \"https://rrdp.example.fr/rrdp/notification.xml\"\nfetch_from = \"10.0.0.5:8081\"\n" +
			"[[repository]]\nname = \"f\"\norigin = \"https://rrdp.example.it/rrdp/notification.xml\"\nfetch_from = \"http://10.0.0.5:99999\"\n",
			[]string{
				`test.toml:4: repository[0].fetch_from: want http://HOST[:PORT] or https://HOST[:PORT], got "ftp://10.0.0.5"`,
				`test.toml:8: repository[1].fetch_from: path, query or fragment in "http://10.0.0.5:8081/rrdp/": want scheme://HOST[:PORT] (requests keep the origin's paths)`,
				`test.toml:12: repository[2].fetch_from: user info in "https://user@10.0.0.5": want scheme://HOST[:PORT]`,
				`test.toml:16: repository[3].fetch_from: path, query or fragment in "http://10.0.0.5?x=1": want scheme://HOST[:PORT] (requests keep the origin's paths)`,
				`test.toml:20: repository[4].fetch_from: want http://HOST[:PORT] or https://HOST[:PORT], got "10.0.0.5:8081"`,
				`test.toml:24: repository[5].fetch_from: port in "http://10.0.0.5:99999": want 1 to 65535`,
			}},
		{"fetch_from not a string", minimal + "fetch_from = 5\n",
			[]string{`test.toml:4: repository[0].fetch_from: want a string, got the integer 5`}},
		{"ca_file with an http fetch_from", "[[repository]]\nname = \"x\"\norigin = \"https://rrdp.example.net/notification.xml\"\nfetch_from = \"http://10.0.0.5\"\nca_file = \"ca.pem\"\n",
			[]string{`test.toml:5: repository[0].ca_file: fetch_from is plain http: no certificate to check`, `test.toml:5: repository[0].ca_file: open ca.pem: no such file or directory`}},
		{"formats", minimal + "formats = [\"xml\", \"json\", \"xml\"]\n",
			[]string{
				`test.toml:4: repository[0].formats: want "xml", "bin" or "compact", got "json"`,
				`test.toml:4: repository[0].formats: "xml" is listed twice`,
			}},
		{"bad admin listen", "[server]\nadmin_listen = \"9090\"\n" + minimal,
			[]string{`test.toml:2: server.admin_listen: want host:port such as "127.0.0.1:8080" or "[::]:443", got "9090"`}},
		{"admin listen public", "[server]\nlisten = [\"127.0.0.1:8080\"]\nadmin_listen = \"127.0.0.1:8080\"\n" + minimal,
			[]string{`test.toml:3: server.admin_listen: "127.0.0.1:8080" is a public listener too: the admin listener needs its own address`}},
		{"pprof without admin", "[server]\npprof = true\n" + minimal,
			[]string{`test.toml:2: server.pprof: needs admin_listen: profiles are never served on the public listeners`}},
		{"access log format", "[server]\naccess_log = \"common\"\n" + minimal,
			[]string{`test.toml:2: server.access_log: want one of off, combined, json, got "common"`}},
		{"access log file while off", "[server]\naccess_log_file = \"access.log\"\n" + minimal,
			[]string{`test.toml:2: server.access_log_file: set while access_log is off`}},
		{"backoff below interval", minimal + "poll_interval = \"10m\"\nmax_backoff = \"5m\"\n",
			[]string{`test.toml:5: repository[0].max_backoff: 5m is below poll_interval 10m`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), "test.toml")
			if err == nil {
				t.Fatalf("Parse: no error, want %q (config %+v)", tc.want, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\ngot  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPasswordFromEnvironment(t *testing.T) {
	t.Setenv(RedisPasswordEnv, "s3cret")
	c := mustParse(t, "[server]\nmirror_base = \"https://m.example.net/\"\n[cache.redis]\nurl = \"redis://10.0.0.1:6379/1\"\nusername = \"proxy\"\n"+minimal)
	rc := c.Cache.Redis.Config()
	if rc.Password != "s3cret" {
		t.Errorf("password: got %q, want it from %s", rc.Password, RedisPasswordEnv)
	}
	if got, want := rc.URL, "redis://proxy@10.0.0.1:6379/1"; got != want {
		t.Errorf("url: got %q, want %q", got, want)
	}
}

func TestBaseURI(t *testing.T) {
	c := mustParse(t, `
[server]
mirror_base = "https://mirror.example.net/rpki/"
[[repository]]
name = "lacnic"
origin = "https://rrdp.lacnic.net/rrdp/notification.xml"
[[repository]]
name = "ripe"
origin = "https://RRDP.ripe.net/notification.xml"
[[repository]]
name = "rir"
origin = "http://10.0.0.5:8080/rrdp/notification.xml"
mode = "reverse"
hosts = ["rrdp.example.net"]
[[repository]]
name = "rir-cdn"
origin = "http://10.0.0.5:8080/other/notification.bin"
mode = "reverse"
hosts = ["rrdp.example.net"]
base = "https://cdn.example.net/other/"
`)
	want := []string{
		"https://mirror.example.net/rpki/rrdp.lacnic.net/rrdp/",
		"https://mirror.example.net/rpki/rrdp.ripe.net/",
		"https://rrdp.example.net/rrdp/",
		"https://cdn.example.net/other/",
	}
	for i := range c.Repositories {
		if got := c.BaseURI(&c.Repositories[i]); got != want[i] {
			t.Errorf("%s: got %q, want %q", c.Repositories[i].Name, got, want[i])
		}
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512MiB", 512 << 20, true}, {"4GiB", 4 << 30, true}, {"16MB", 16e6, true}, {"8KiB", 8 << 10, true},
		{"8kB", 8000, true}, {"100B", 100, true}, {"100", 100, true}, {"1.5KiB", 1536, true}, {"0", 0, true},
		{"", 0, false}, {"MiB", 0, false}, {"-1MiB", 0, false}, {"1TiB", 0, false}, {"9999999999GiB", 0, false},
	} {
		var z Size
		err := z.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && int64(z) != tc.want) {
			t.Errorf("size %q: got %d, %v; want %d, ok %v", tc.in, z, err, tc.want, tc.ok)
		}
		if tc.ok {
			var back Size
			if err := back.UnmarshalText([]byte(z.String())); err != nil || back != z {
				t.Errorf("size %q: %s reads back as %d, %v", tc.in, z, back, err)
			}
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Minute, "1m"}, {2 * time.Hour, "2h"}, {90 * time.Second, "1m30s"}, {90 * time.Minute, "1h30m"}, {1500 * time.Millisecond, "1.5s"}} {
		if got := (Duration{tc.d}).String(); got != tc.want {
			t.Errorf("duration %v: got %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestOtherSpellings checks that TOML's other ways to write the same tables
// (dotted keys, inline tables, arrays of inline tables) decode, default and
// report lines alike.
func TestOtherSpellings(t *testing.T) {
	c := mustParse(t, `server.listen = ["127.0.0.1:9090"]
server.mirror_base = "https://m.example.net/"
cache = { memory = "1GiB", redis = {} }
repository = [
  { name = "ripe", origin = "https://rrdp.ripe.net/notification.xml" },
  { name = "arin", origin = "https://rrdp.arin.net/notification.xml", poll_interval = "5m" },
]
`)
	if got, want := c.Server.Listen, []string{"127.0.0.1:9090"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listen: got %q, want %q", got, want)
	}
	if c.Cache.Redis == nil || c.Cache.Redis.URL != "redis://127.0.0.1:6379/0" {
		t.Errorf("redis: got %+v, want the defaults", c.Cache.Redis)
	}
	if len(c.Repositories) != 2 || c.Repositories[1].PollInterval.Duration != 5*time.Minute || c.Repositories[0].PollInterval.Duration != time.Minute {
		t.Errorf("repositories: got %+v", c.Repositories)
	}
	_, err := Parse([]byte("repository = [\n  { name = \"a\", origin = \"https://a.example/notification.xml\" },\n  { name = \"b\", origin = \"https://b.example/notification.xml\", jitter = \"lots\" },\n]\n"), "test.toml")
	want := `test.toml:3: repository[1].jitter: want a number, got the string "lots"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if c := mustParse(t, "[server]\nmirror_base = \"https://m.example.net/\"\n[cache.redis]\n"+minimal); c.Cache.Redis == nil || c.Cache.Redis.ChunkSize != 4<<20 {
		t.Errorf("empty [cache.redis]: got %+v, want the defaults", c.Cache.Redis)
	}
}

func TestSpillDir(t *testing.T) {
	for _, tc := range []struct {
		name, state, spill, want string
	}{
		{"spill_dir wins", "/var/lib/p", "/srv/spill", "/srv/spill"},
		{"under the state directory", "/var/lib/p", "", "/var/lib/p/spill"},
		{"neither: the system's temporary directory", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Cache{StateDir: tc.state, SpillDir: tc.spill}
			if got := c.Spill(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			r := Repository{}
			if got := (&Config{Cache: c}).Follow(&r).SpillDir; got != tc.want {
				t.Errorf("follow.Config.SpillDir: got %q, want %q", got, tc.want)
			}
		})
	}
}
