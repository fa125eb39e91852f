package conf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// minRetention is the retention the publication server BCP asks for
// (DESIGN.md, invariant 7).
const minRetention = 2 * time.Hour

func (p *parser) validate(c *Config) {
	p.allowHTTPBase = c.Server.AllowHTTPBase
	p.server(&c.Server)
	p.cache(&c.Cache)
	if len(c.Repositories) == 0 {
		p.add(1, "repository", fmt.Errorf("no [[repository]] table: nothing to serve"))
	}
	names := make(map[string]string) // name -> key of its first use
	bases := make(map[string]string) // base URI -> key of its first use
	mirrored := ""
	for i := range c.Repositories {
		r := &c.Repositories[i]
		key := fmt.Sprintf("repository[%d]", i)
		p.repository(key, r, c.Cache.Retention)
		if r.Name != "" {
			if first, ok := names[r.Name]; ok {
				p.errorf(key+".name", "%q is already the name of %s (line %d)", r.Name, first, p.lines.line(first+".name"))
			} else {
				names[r.Name] = key
			}
		}
		if r.Mode == ModeMirror && mirrored == "" {
			mirrored = key
		}
	}
	// Reported when nothing else is wrong, as the base URIs below: a
	// mistyped mode or origin says more than a missing mirror_base.
	if mirrored != "" && c.Server.MirrorBase == "" && len(p.errs) == 0 {
		p.add(p.lines.line(mirrored+".mode"), "server.mirror_base",
			fmt.Errorf("%s is in mirror mode (line %d): set server.mirror_base, the public https URL of this server", mirrored, p.lines.line(mirrored+".mode")))
	}
	if c.Validate != nil {
		p.validation(c)
	}
	p.compact(c)
	if len(p.errs) > 0 {
		return // base URIs need valid origins and hosts
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		key := fmt.Sprintf("repository[%d]", i)
		if r.Mode == ModeReverse && r.Base != "" {
			// serve computes the base from the origin (proxy.BaseURI):
			// reverse mode serves the files at the origin's own paths.
			bu, berr := url.Parse(r.Base)
			ou, oerr := url.Parse(r.Origin)
			if berr == nil && oerr == nil {
				dir := ou.Path[:strings.LastIndexByte(ou.Path, '/')+1]
				if bu.Path != dir {
					p.errorf(key+".base", "path %q must be the origin's directory %q: reverse mode serves the repository at the origin's own paths", bu.Path, dir)
					continue
				}
			}
		}
		b := c.BaseURI(r)
		if first, ok := bases[b]; ok {
			p.errorf(key+".origin", "served at %s, as %s is", b, first)
		} else {
			bases[b] = key
		}
	}
	if len(p.errs) > 0 {
		return
	}
	// The routes as the server checks them (proxy.Config.CheckRepos):
	// the first repository that makes the list fail is the culprit.
	pc := proxy.Config{AllowHTTPBase: c.Server.AllowHTTPBase}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		pc.Repos = append(pc.Repos, c.Route(r))
		if err := pc.CheckRepos(); err != nil {
			key := fmt.Sprintf("repository[%d].hosts", i)
			if r.Mode == ModeMirror || !p.lines.has(key) {
				key = fmt.Sprintf("repository[%d].origin", i)
			}
			p.errorf(key, "%v", err)
			return
		}
	}
}

func (p *parser) server(s *Server) {
	if len(s.Listen) == 0 && len(s.TLSListen) == 0 {
		p.errorf("server.listen", "no address to listen on (listen and tls_listen are empty)")
	}
	p.addrs("server.listen", s.Listen)
	p.addrs("server.tls_listen", s.TLSListen)
	switch {
	case len(s.TLSListen) > 0 && (s.TLSCert == "" || s.TLSKey == ""):
		p.errorf("server.tls_listen", "needs tls_cert and tls_key")
	case len(s.TLSListen) == 0 && (s.TLSCert != "" || s.TLSKey != ""):
		key := "server.tls_cert"
		if s.TLSCert == "" {
			key = "server.tls_key"
		}
		p.errorf(key, "set without tls_listen")
	case len(s.TLSListen) > 0:
		s.TLSCert, s.TLSKey = p.path(s.TLSCert), p.path(s.TLSKey)
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			p.errorf("server.tls_cert", "load certificate and key: %v", err)
		} else {
			s.Certificate = &cert
		}
	}
	p.positive("server.read_timeout", s.ReadTimeout)
	p.positive("server.write_timeout", s.WriteTimeout)
	p.positive("server.idle_timeout", s.IdleTimeout)
	if s.NotificationMaxAge.Duration < time.Second {
		// The server takes zero for its default, 60s: refuse it rather
		// than serve another value than the one written.
		p.errorf("server.notification_max_age", "want at least 1s, got %s", s.NotificationMaxAge)
	}
	if s.MaxConns < 0 {
		p.errorf("server.max_conns", "negative count %d", s.MaxConns)
	}
	if s.MaxConnsPerIP < 0 {
		p.errorf("server.max_conns_per_ip", "negative count %d", s.MaxConnsPerIP)
	}
	if s.MirrorBase != "" {
		if err := checkBase(s.MirrorBase, s.AllowHTTPBase); err != nil {
			p.errorf("server.mirror_base", "%v", err)
		} else if !strings.HasSuffix(s.MirrorBase, "/") {
			s.MirrorBase += "/"
		}
	}
	if s.Node == "" && !p.lines.has("server.node") {
		s.Node, _ = os.Hostname()
	}
	if s.Node == "" || strings.ContainsFunc(s.Node, func(r rune) bool { return r <= ' ' || r > '~' }) {
		p.errorf("server.node", "want a name of printable ASCII without spaces, got %q", s.Node)
	}
	p.oneOf("server.log_level", s.LogLevel, "debug", "info", "warn", "error")
	p.oneOf("server.log_format", s.LogFormat, "text", "json")
	if s.AdminListen != "" {
		p.addrs("server.admin_listen", []string{s.AdminListen})
		if slices.Contains(s.Listen, s.AdminListen) || slices.Contains(s.TLSListen, s.AdminListen) {
			p.errorf("server.admin_listen", "%q is a public listener too: the admin listener needs its own address", s.AdminListen)
		}
	} else if s.PProf {
		p.errorf("server.pprof", "needs admin_listen: profiles are never served on the public listeners")
	}
	p.oneOf("server.access_log", s.AccessLog, "off", "combined", "json")
	if _, _, err := s.SoftMemoryLimit(); err != nil {
		p.errorf("server.memory_limit", "%v", err)
	}
	if _, _, err := s.CollectorHeadroom(); err != nil {
		p.errorf("server.gc_headroom", "%v", err)
	}
	if s.AccessLogFile != "" {
		if s.AccessLog == "off" {
			p.errorf("server.access_log_file", "set while access_log is off")
		}
		s.AccessLogFile = p.path(s.AccessLogFile)
	}
}

// addrs checks listen addresses: host:port with a port number.
func (p *parser) addrs(key string, addrs []string) {
	seen := make(map[string]bool)
	for _, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err == nil {
			var n uint64
			n, err = strconv.ParseUint(port, 10, 16)
			if err == nil && n == 0 {
				err = fmt.Errorf("port 0")
			}
		}
		if err != nil {
			p.errorf(key, "want host:port such as \"127.0.0.1:8080\" or \"[::]:443\", got %q", a)
		}
		if seen[a] {
			p.errorf(key, "%q is listed twice", a)
		}
		seen[a] = true
	}
}

func (p *parser) cache(c *Cache) {
	if c.Memory <= 0 {
		p.errorf("cache.memory", "want a positive size, got %s", c.Memory)
	}
	if c.DiskMax <= 0 {
		p.errorf("cache.disk", "want a positive size, got %s", c.DiskMax)
	}
	c.StateDir = p.path(c.StateDir)
	c.SpillDir = p.path(c.SpillDir)
	p.retention("cache.retention", c.Retention)
	if c.Redis != nil {
		p.redis(c.Redis)
	}
}

func (p *parser) redis(r *Redis) {
	const key = "cache.redis"
	u, err := url.Parse(r.URL)
	switch {
	case err != nil:
		p.errorf(key+".url", "%v", err)
	case u.Scheme != "redis" && u.Scheme != "rediss":
		p.errorf(key+".url", "want redis:// or rediss://, got %q", r.URL)
	case u.Host == "":
		p.errorf(key+".url", "no host in %q", r.URL)
	case u.User != nil && func() bool { _, ok := u.User.Password(); return ok }():
		p.errorf(key+".url", "holds a password: remove it and set the environment variable %s", RedisPasswordEnv)
	case u.User != nil && u.User.Username() != "" && r.Username != "":
		p.errorf(key+".username", "the url names a user too: set it in one place")
	}
	if r.TLSCAFile != "" {
		if err == nil && u.Scheme != "rediss" {
			p.errorf(key+".tls_ca_file", "needs a rediss:// url")
		}
		r.TLSCAFile = p.path(r.TLSCAFile)
		if pem, ok := p.readPEM(key+".tls_ca_file", r.TLSCAFile); ok {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM(pem)
			r.RootCAs = pool
		}
	}
	p.positive(key+".dial_timeout", r.DialTimeout)
	p.positive(key+".read_timeout", r.ReadTimeout)
	p.positive(key+".write_timeout", r.WriteTimeout)
	if r.ChunkSize < 64<<10 || r.ChunkSize > 256<<20 {
		p.errorf(key+".chunk_size", "want a size from 64KiB to 256MiB, got %s", r.ChunkSize)
	}
	if r.LeaseTTL.Duration < time.Second {
		p.errorf(key+".lease_ttl", "want at least 1s, got %s", r.LeaseTTL)
	}
	r.Password = os.Getenv(RedisPasswordEnv)
}

// maxPEM caps the size of a CA file.
const maxPEM = 4 << 20

// readCapped reads a file of at most limit bytes.
func readCapped(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %s", name, Size(limit))
	}
	return b, nil
}

// readPEM reads a file of PEM certificates named by key.
func (p *parser) readPEM(key, name string) ([]byte, bool) {
	b, err := readCapped(name, maxPEM)
	if err != nil {
		p.errorf(key, "%v", err)
		return nil, false
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		p.errorf(key, "%s holds no PEM certificate", name)
		return nil, false
	}
	return b, true
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (p *parser) repository(key string, r *Repository, retention Duration) {
	switch {
	case !p.lines.has(key + ".name"):
		p.errorf(key+".name", "missing: every repository needs a name")
	case !nameRE.MatchString(r.Name):
		p.errorf(key+".name", "want 1 to 63 of a-z, 0-9 and '-', not at either end, got %q", r.Name)
	}
	var origin *url.URL
	if !p.lines.has(key + ".origin") {
		p.errorf(key+".origin", "missing: every repository needs the URL of its notification")
	} else if u, err := checkOrigin(r.Origin); err != nil {
		p.errorf(key+".origin", "%v", err)
	} else {
		origin = u
	}
	switch r.Mode {
	case ModeReverse:
		if len(r.Hosts) == 0 {
			p.errorf(key+".hosts", "reverse mode needs the host names the repository is served under")
		}
		for _, h := range r.Hosts {
			if !validHost(h) {
				p.errorf(key+".hosts", "want a lowercase host name, optionally with :port, got %q", h)
			}
		}
		if r.Base != "" {
			if err := checkBase(r.Base, p.allowHTTPBase); err != nil {
				p.errorf(key+".base", "%v", err)
			} else if !strings.HasSuffix(r.Base, "/") {
				r.Base += "/"
			}
		}
	case ModeMirror:
		if len(r.Hosts) > 0 {
			p.errorf(key+".hosts", "applies to reverse mode: mirror repositories are served under server.mirror_base")
		}
		if r.Base != "" {
			p.errorf(key+".base", "applies to reverse mode: mirror repositories are served under server.mirror_base")
		}
		if r.Passthrough && p.lines.has(key+".passthrough") {
			p.errorf(key+".passthrough", "applies to reverse mode: a mirror serves no other files of the origin's host")
		}
		r.Passthrough = false // the default is for reverse mode
	default:
		p.errorf(key+".mode", "want \"reverse\" or \"mirror\", got %q", r.Mode)
	}
	for _, pp := range r.PassthroughPaths {
		if !strings.HasPrefix(pp, "/") || strings.ContainsAny(pp, "?#%\\") || strings.Contains(pp, "..") || strings.HasSuffix(pp, ".xml") || strings.HasSuffix(pp, ".bin") {
			p.errorf(key+".passthrough_paths", "want absolute paths without query, fragment, percent-encoding or dot segments, not RRDP names (.xml, .bin), got %q", pp)
		}
	}
	if r.PassthroughMax < 1 || r.PassthroughMax > 1<<30 {
		p.errorf(key+".passthrough_max", "want a size from 1B to 1GiB, got %d bytes", r.PassthroughMax)
	}
	if len(r.Formats) == 0 {
		p.errorf(key+".formats", "empty: serve \"xml\", \"bin\" or both (and \"compact\" beside them)")
	}
	for i, f := range r.Formats {
		if f != "xml" && f != "bin" && f != "compact" {
			p.errorf(key+".formats", "want \"xml\", \"bin\" or \"compact\", got %q", f)
		} else if slices.Contains(r.Formats[:i], f) {
			p.errorf(key+".formats", "%q is listed twice", f)
		}
	}
	if r.PollInterval.Duration < time.Second {
		p.errorf(key+".poll_interval", "want at least 1s, got %s", r.PollInterval)
	}
	if r.Jitter <= 0 || r.Jitter >= 1 {
		// follow.Config takes a zero Jitter as its default.
		p.errorf(key+".jitter", "want a fraction above 0 and below 1, such as 0.1, got %v", r.Jitter)
	}
	if r.MaxBackoff.Duration < r.PollInterval.Duration {
		p.errorf(key+".max_backoff", "%s is below poll_interval %s", r.MaxBackoff, r.PollInterval)
	}
	if r.Parallel < 1 {
		p.errorf(key+".parallel", "want at least 1, got %d", r.Parallel)
	}
	if r.MaxDeltas < 1 {
		p.errorf(key+".max_deltas", "want at least 1, got %d", r.MaxDeltas)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"connect_timeout", r.ConnectTimeout}, {"header_timeout", r.HeaderTimeout},
		{"notification_timeout", r.NotificationTimeout}, {"snapshot_timeout", r.SnapshotTimeout}, {"delta_timeout", r.DeltaTimeout}} {
		p.positive(key+"."+d.name, d.v)
	}
	if r.MinRate < 0 {
		p.errorf(key+".min_rate", "negative rate %s", r.MinRate)
	}
	for _, s := range []struct {
		name string
		v    Size
	}{{"max_notification_size", r.MaxNotificationSize}, {"max_snapshot_size", r.MaxSnapshotSize}, {"max_delta_size", r.MaxDeltaSize}} {
		if s.v <= 0 {
			p.errorf(key+"."+s.name, "want a positive size, got %s", s.v)
		}
	}
	tlsScheme := ""
	if origin != nil {
		tlsScheme = origin.Scheme
	}
	if r.FetchFrom != "" {
		if err := upstream.CheckFetchFrom(r.FetchFrom); err != nil {
			p.errorf(key+".fetch_from", "%v", err)
		} else if u, err := url.Parse(r.FetchFrom); err == nil {
			tlsScheme = strings.ToLower(u.Scheme)
		}
	}
	if r.CAFile != "" {
		switch {
		case r.FetchFrom != "" && tlsScheme == "http":
			p.errorf(key+".ca_file", "fetch_from is plain http: no certificate to check")
		case r.FetchFrom == "" && origin != nil && origin.Scheme != "https":
			p.errorf(key+".ca_file", "the origin is not https")
		}
		r.CAFile = p.path(r.CAFile)
		r.CAPEM, _ = p.readPEM(key+".ca_file", r.CAFile)
	}
	if !p.lines.has(key + ".retention") {
		r.Retention = retention
	} else {
		p.retention(key+".retention", r.Retention)
	}
}

// failed reports whether an error was recorded about key.
func (p *parser) failed(key string) bool {
	for _, err := range p.errs {
		if e, ok := err.(*Error); ok && e.Key == key {
			return true
		}
	}
	return false
}

func (p *parser) positive(key string, d Duration) {
	if d.Duration <= 0 {
		p.errorf(key, "want a positive duration, got %s", d)
	}
}

func (p *parser) retention(key string, d Duration) {
	if d.Duration < minRetention {
		p.errorf(key, "%s is below the %s that relying parties may still need files for (publication server BCP)", d, Duration{minRetention})
	}
}

func (p *parser) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.errorf(key, "want one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

// checkOrigin checks a notification URL.
func checkOrigin(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("want an http or https URL, got %q", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("want scheme://host/path/notification.xml without user, query or fragment, got %q", s)
	case !strings.HasSuffix(u.Path, "/notification.xml") && !strings.HasSuffix(u.Path, "/notification.bin"):
		return nil, fmt.Errorf("want a URL ending in /notification.xml or /notification.bin, got %q", s)
	}
	return u, nil
}

// checkBase checks a public directory URL: https, or http if allowHTTP.
func checkBase(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme == "http" && !allowHTTP:
		return fmt.Errorf("want an https URL (relying parties expect https, RFC 8182), got %q; server.allow_http_base = true accepts http", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("want an https URL, got %q", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("want scheme://host/path/ without user, query or fragment, got %q", s)
	case !strings.HasSuffix(u.Path, "/") && u.Path != "":
		return fmt.Errorf("want a URL ending in /, got %q", s)
	}
	return nil
}

// validHost reports whether h is a lowercase DNS name or IP address,
// optionally with a port.
func validHost(h string) bool {
	if host, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return false
		}
		h = host
	}
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
