package conf

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// Config is a whole configuration file. Parse fills every key the file
// leaves out with its default; the tags carry the documentation that
// Reference prints.
type Config struct {
	Server       Server       `toml:"server" doc:"the HTTP server"`
	Cache        Cache        `toml:"cache" doc:"the tiered store: memory, optional state directory, optional Redis"`
	Repositories []Repository `toml:"repository" doc:"one table per repository followed"`
	Validate     *Validate    `toml:"validate" doc:"validation of every serial as a relying party would, across the repositories followed; absent: none"`
	Compact      *Compact     `toml:"compact" doc:"the compact format (iROAs and iMFTs made from what validated, signed by this node's key), for the repositories whose formats list \"compact\"; needs [validate]; in a fleet ([cache.redis]) the holder of a repository's lease signs it and the others serve what it published, so every node needs the same key; absent: not served"`

	// File is the name the configuration was parsed under.
	File string `toml:"-"`
}

// Server configures the HTTP server and the process.
type Server struct {
	Listen             []string `toml:"listen" doc:"addresses (host:port) to serve plain HTTP on"`
	TLSListen          []string `toml:"tls_listen" doc:"addresses to serve HTTPS on; needs tls_cert and tls_key"`
	TLSCert            string   `toml:"tls_cert" doc:"PEM certificate chain file for tls_listen"`
	TLSKey             string   `toml:"tls_key" doc:"PEM private key file for tls_listen"`
	ReadTimeout        Duration `toml:"read_timeout" doc:"time to read a whole request"`
	WriteTimeout       Duration `toml:"write_timeout" doc:"time to write a whole response; a snapshot to a slow relying party needs long"`
	IdleTimeout        Duration `toml:"idle_timeout" doc:"time a keep-alive connection may wait for its next request"`
	MaxConns           int      `toml:"max_conns" doc:"connections served at once (0: no limit)"`
	MaxConnsPerIP      int      `toml:"max_conns_per_ip" doc:"connections from one client address at once (0: no limit; behind nginx or a CDN raise it or set 0)"`
	NotificationMaxAge Duration `toml:"notification_max_age" doc:"Cache-Control max-age of notification files (at least 1s)"`
	MirrorBase         string   `toml:"mirror_base" doc:"public https URL of this server for mirror repositories, each served under mirror_base + origin host + origin directory; required when a repository is in mirror mode"`
	AllowHTTPBase      bool     `toml:"allow_http_base" doc:"accept http:// in mirror_base and base, and write such URIs into notifications; relying parties expect https (RFC 8182, RFC 9674): only for demos, labs and a private core-to-edge link"`
	Node               string   `toml:"node" default:"the host name" doc:"name of this node in logs, status and Redis leases; the nodes of a fleet need different names"`
	LogLevel           string   `toml:"log_level" doc:"debug, info, warn or error"`
	LogFormat          string   `toml:"log_format" doc:"text or json"`
	AdminListen        string   `toml:"admin_listen" doc:"address (host:port) of the admin listener, plain HTTP: /metrics, /status, /status.json, /healthz and /readyz are served there only and the public listeners serve only repositories (empty: the operator pages are on the public listeners)"`
	PProf              bool     `toml:"pprof" doc:"serve net/http/pprof under /debug/pprof/ on admin_listen (needs admin_listen)"`
	AccessLog          string   `toml:"access_log" doc:"a line per request: off, combined (the Apache and nginx format) or json"`
	AccessLogFile      string   `toml:"access_log_file" doc:"file the access log is appended to, reopened on SIGHUP for log rotation (empty: standard error, beside the process log)"`
	MemoryLimit        string   `toml:"memory_limit" doc:"soft memory limit of the process (Go's GOMEMLIMIT): auto (90% of the container's or cgroup's memory limit when there is one, else none; GOMEMLIMIT in the environment, when set, is kept), off (none), or a size such as \"3GiB\"; the collector works harder as the heap nears it, trading CPU for a lower peak"`
	GCHeadroom         string   `toml:"gc_headroom" doc:"how far the Go heap may grow above what is live before the collector runs: auto (128MiB, or GOGC when the environment sets it), off (GOGC, 100 by default: the heap may double), or a size; GOGC is set from the live heap so that the growth stays near this, between a twentieth and a tenth of the live heap, and so that the heap goal does not fall below the goal the peak live heap of the last 5 minutes had (by at most this much above the live heap), keeping the room serials use between them"`

	// Certificate is the pair tls_cert and tls_key name, loaded by Parse
	// (nil without tls_listen).
	Certificate *tls.Certificate `toml:"-"`
}

// Cache configures the store.
type Cache struct {
	Memory    Size     `toml:"memory" doc:"memory budget for files outside the current state of the repositories (which is always held)"`
	StateDir  string   `toml:"state_dir" doc:"directory of the disk tier, for a warm restart while the origin is down (empty: none)"`
	SpillDir  string   `toml:"spill_dir" doc:"directory where a fetched snapshot or delta past 16 MiB is kept while it is checked (in reverse mode the origin's snapshot stays there for its whole sync): it needs room for the largest snapshot times the repositories syncing at once, on a disk, never a tmpfs, which would put the bodies back in memory; the files have no name, so a crash leaves none (empty: state_dir/spill with a state directory, else the system's temporary directory)"`
	DiskMax   Size     `toml:"disk" doc:"bytes the state directory may hold (blobs and heads): above it, files in retention are dropped, oldest first, never the current state of a repository, which stays on disk and served when it alone exceeds this (a warning, rrdp_proxy_cache_tier_over_max); the default holds the current state of a mirror of the world's RRDP (about 1.1 GB of XML, about 3 GB on disk with the .bin and gzip copies) and leaves the rest to retention"`
	Retention Duration `toml:"retention" doc:"how long files that left a notification stay servable"`
	Redis     *Redis   `toml:"redis" doc:"the shared Redis tier of a fleet; absent: none"`
}

// Redis configures the shared tier. The password comes from the
// environment variable RRDP_PROXY_REDIS_PASSWORD, never from the file.
type Redis struct {
	URL          string   `toml:"url" doc:"redis://host:port/db, or rediss:// for TLS; no password in it"`
	Username     string   `toml:"username" doc:"ACL user name (empty: the default user)"`
	TLSCAFile    string   `toml:"tls_ca_file" doc:"PEM file of CAs trusted for rediss:// beside the system roots"`
	DialTimeout  Duration `toml:"dial_timeout" doc:"time to connect"`
	ReadTimeout  Duration `toml:"read_timeout" doc:"time for the reads of one round trip"`
	WriteTimeout Duration `toml:"write_timeout" doc:"time for the writes of one round trip"`
	ChunkSize    Size     `toml:"chunk_size" doc:"size of the chunks blobs are stored in (64KiB to 256MiB)"`
	LeaseTTL     Duration `toml:"lease_ttl" doc:"lifetime of the lease by which one node of the fleet polls a repository's origin: the longest a dead node's repositories go unpolled"`
	Prefix       string   `toml:"prefix" doc:"prefix of every key and channel, so that deployments can share a server"`

	// Password is RRDP_PROXY_REDIS_PASSWORD (empty when unset).
	Password string `toml:"-"`
	// RootCAs is the system pool plus tls_ca_file, or nil without it.
	RootCAs *x509.CertPool `toml:"-"`
}

// Repository is one repository followed and served.
type Repository struct {
	Name                string   `toml:"name" default:"required" doc:"unique name: lowercase letters, digits and '-' (required)"`
	Origin              string   `toml:"origin" default:"required" doc:"notification URL, http or https, ending in notification.xml or notification.bin (required)"`
	FetchFrom           string   `toml:"fetch_from" doc:"where the origin's host really is, scheme://host[:port] without path (http://10.0.0.5:8081): every request for the origin's scheme, host and port connects there, keeping the origin's Host header and, over https, its TLS name; plain http is accepted (a private link)"`
	Mode                string   `toml:"mode" doc:"reverse (served under hosts, in front of the origin) or mirror (served under server.mirror_base)"`
	Hosts               []string `toml:"hosts" doc:"reverse mode: the host names this repository is served under (required in reverse mode)"`
	Base                string   `toml:"base" default:"https://, hosts[0], the origin's directory" doc:"reverse mode: public URL of the directory of the served files, ending in /"`
	Formats             []string `toml:"formats" doc:"formats served: xml, bin, and compact (under compact/notification.bin; needs [validate] and [compact])"`
	PollInterval        Duration `toml:"poll_interval" doc:"time from the start of one poll of the notification to the start of the next; a poll that took longer is followed by a quarter of it"`
	Jitter              float64  `toml:"jitter" doc:"fraction of the interval by which each wait varies, both ways: above 0, below 1"`
	MaxBackoff          Duration `toml:"max_backoff" doc:"longest wait after consecutive errors (the wait doubles from poll_interval)"`
	Parallel            int      `toml:"parallel" doc:"deltas fetched at once"`
	MaxDeltas           int      `toml:"max_deltas" doc:"most deltas one sync applies; further behind, it takes the snapshot"`
	ConnectTimeout      Duration `toml:"connect_timeout" doc:"time to connect to the origin"`
	HeaderTimeout       Duration `toml:"header_timeout" doc:"time to the response headers"`
	NotificationTimeout Duration `toml:"notification_timeout" doc:"time for a whole notification fetch"`
	SnapshotTimeout     Duration `toml:"snapshot_timeout" doc:"time for a whole snapshot fetch"`
	DeltaTimeout        Duration `toml:"delta_timeout" doc:"time for a whole delta fetch"`
	MinRate             Size     `toml:"min_rate" doc:"slowest transfer accepted, per second (0: no minimum)"`
	MaxNotificationSize Size     `toml:"max_notification_size" doc:"size cap of a notification, after decompression"`
	MaxSnapshotSize     Size     `toml:"max_snapshot_size" doc:"size cap of a snapshot, after decompression"`
	MaxDeltaSize        Size     `toml:"max_delta_size" doc:"size cap of a delta, after decompression"`
	CAFile              string   `toml:"ca_file" doc:"PEM file of CAs trusted for this https origin beside the system roots (an internal CA)"`
	Retention           Duration `toml:"retention" default:"cache.retention" doc:"retention of this repository's files"`
	Passthrough         bool     `toml:"passthrough" doc:"reverse mode: serve the paths of hosts that are not RRDP files (the TA certificate a TAL names, robots.txt) from the origin's host, cached with HTTP semantics; false answers 404 for them"`
	PassthroughPaths    []string `toml:"passthrough_paths" doc:"reverse mode: the paths passed through: an entry ending in / is a prefix (except / alone, the landing page), any other an exact path; the origin's host may serve more (a publication server's metrics or UI), which stays private"`
	PassthroughMax      Size     `toml:"passthrough_max" doc:"reverse mode: size cap of one file passed through"`

	// CAPEM is the content of ca_file, read by Parse.
	CAPEM []byte `toml:"-"`
}

// Validate configures the validation of what the node follows
// (proxy/validate). Parse reads the TALs and the TA certificates beside
// them.
type Validate struct {
	TALs        []string `toml:"tals" default:"required" doc:"TAL files (RFC 8630) to validate from; the TA certificate is the file beside each named like the last part of one of its URIs, else fetched from its https URI (required)"`
	Gate        bool     `toml:"gate" doc:"hold back a serial that breaks a rule below: it is not published, the last good serial stays served until rrdp-proxy release REPO (which talks to server.admin_listen, required; in a fleet, any node's: a node that does not hold the repository's lease queues the release in Redis for the one that does) or until the origin publishes another serial; false only observes: every serial is published and the rules only say what the gate would hold"`
	MaxVRPLoss  float64  `toml:"max_vrp_loss" doc:"rule: a serial that removes more than this fraction of the VRPs served (0.05: 5%; VRPs replaced by others count; 0: no such rule)"`
	MaxASPALoss float64  `toml:"max_aspa_loss" doc:"rule: the same for ASPAs, by customer AS (0: no such rule)"`
	CAInvalid   bool     `toml:"ca_invalid" doc:"rule: a serial that makes a CA that validated fail (a CA that leaves its parent's publication point does not count)"`
	Interval    Duration `toml:"interval" doc:"time between revalidations of the state served when no serial arrives (objects expire)"`
	CAFile      string   `toml:"ca_file" doc:"PEM file of CAs trusted beside the system roots when a TA certificate is fetched over https"`

	// TrustAnchors are the TALs parsed, with the TA certificates found
	// beside them; CAPEM is the content of ca_file. Read by Parse.
	TrustAnchors []rpki.TrustAnchor `toml:"-"`
	CAPEM        []byte             `toml:"-"`
}

// Compact configures the compact format (docs/compact.md).
type Compact struct {
	Key         string `toml:"key" default:"required" doc:"PEM file of the Ed25519 private key the compact files are signed with (rrdp-proxy keygen; mode 0600: readable by no one else); relying parties trust its public half, key.pub, as their validator (required)"`
	RolloverKey string `toml:"rollover_key" doc:"PEM file of a second key during a key rollover: every signed file carries a signature by each key, so that relying parties trusting either accept it (docs/compact.md); empty: none"`
	MaxDeltas   int    `toml:"max_deltas" doc:"deltas a compact notification lists at most (fewer when together they outweigh the snapshot)"`
	// OmitCertificates: lean publications (docs/compact.md).
	OmitCertificates bool `toml:"omit_certificates" doc:"lean publications: each CA certificate below the trust anchors is replaced by a record of its resources and validity inside the signed iMFT, much smaller, but the chain from the trust anchor becomes this node's word too (docs/compact.md)"`

	// KeyPEM and RolloverPEM are the keys' files, read by Parse.
	KeyPEM      []byte `toml:"-"`
	RolloverPEM []byte `toml:"-"`
}

// Modes.
const (
	ModeReverse = "reverse"
	ModeMirror  = "mirror"
)

func defaultServer() Server {
	return Server{
		Listen:       []string{"127.0.0.1:8080"},
		TLSListen:    []string{},
		ReadTimeout:  Duration{30 * time.Second},
		WriteTimeout: Duration{15 * time.Minute},
		IdleTimeout:  Duration{2 * time.Minute},
		MaxConns:     10000,
		// One address may not take every slot: 10,000 idle connections
		// from one client locked the others out. 256 leaves room for
		// the relying parties behind one NAT (each keeps one or two);
		// behind nginx or a CDN, whose connections share a few
		// addresses, raise it or set 0.
		MaxConnsPerIP:      256,
		NotificationMaxAge: Duration{time.Minute},
		LogLevel:           "info",
		LogFormat:          "text",
		AccessLog:          "off",
		MemoryLimit:        "auto",
		GCHeadroom:         "auto",
	}
}

func defaultCache() Cache {
	return Cache{
		Memory:    256 << 20,
		DiskMax:   20 << 30,
		Retention: Duration{2 * time.Hour},
	}
}

func defaultRedis() Redis {
	return Redis{
		URL:          "redis://127.0.0.1:6379/0",
		DialTimeout:  Duration{time.Second},
		ReadTimeout:  Duration{3 * time.Second},
		WriteTimeout: Duration{3 * time.Second},
		ChunkSize:    4 << 20,
		LeaseTTL:     Duration{30 * time.Second},
		Prefix:       "rrdp-proxy:",
	}
}

func defaultCompact() Compact { return Compact{MaxDeltas: 100} }

func defaultValidate() Validate {
	return Validate{TALs: []string{}, MaxVRPLoss: 0.05, MaxASPALoss: 0.05, Interval: Duration{10 * time.Minute}}
}

func defaultRepository() Repository {
	return Repository{
		Mode:                ModeMirror,
		Hosts:               []string{},
		Formats:             []string{"xml", "bin"},
		PollInterval:        Duration{time.Minute},
		Jitter:              0.1,
		MaxBackoff:          Duration{30 * time.Minute},
		Parallel:            4,
		MaxDeltas:           1000,
		ConnectTimeout:      Duration{10 * time.Second},
		HeaderTimeout:       Duration{30 * time.Second},
		NotificationTimeout: Duration{time.Minute},
		SnapshotTimeout:     Duration{30 * time.Minute},
		DeltaTimeout:        Duration{5 * time.Minute},
		MinRate:             8 << 10,
		MaxNotificationSize: 16 << 20,
		MaxSnapshotSize:     4 << 30,
		MaxDeltaSize:        512 << 20,
		Passthrough:         true,
		PassthroughPaths:    []string{"/ta/", "/robots.txt", "/favicon.ico", "/"},
		PassthroughMax:      16 << 20,
	}
}

// RedisPasswordEnv is the environment variable holding the Redis password.
const RedisPasswordEnv = "RRDP_PROXY_REDIS_PASSWORD"
