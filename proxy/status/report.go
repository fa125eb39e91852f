// Package status renders what an rrdp-proxy node knows about the RRDP
// (RFC 8182) repositories it serves: the HTML page an operator opens at
// /status and the same facts as JSON at /status.json. The server fills a
// Report; this package only renders it.
package status

import "time"

// Report is one view of a node, taken by the server when a status page is
// requested.
type Report struct {
	Node    string    // the node's name (host name by default)
	Version string    // rrdp-proxy's version
	Started time.Time // when the process started
	Now     time.Time // when the report was taken
	Ready   bool      // every repository has a verified state
	// Fleet: the node shares a Redis with a fleet; RedisUp, its last
	// Redis call succeeded.
	Fleet, RedisUp bool
	Repos          []Repo // sorted by Name
	// Requests and BytesOut are the node's totals since Started.
	Requests uint64
	BytesOut uint64
	Cache    Cache
	// Validation is nil on a node that does not validate.
	Validation *Validation
}

// Repo is one repository the node serves.
type Repo struct {
	Name   string // the repository's name in the configuration
	Mode   string // "reverse" or "mirror"
	Origin string // the upstream notification URL
	// Interval is the repository's poll interval; zero means the
	// follower's default of 1 min. A repository whose state was last
	// confirmed more than StaleFactor intervals ago is shown as stale.
	Interval time.Duration
	// NotificationXML and NotificationBin are the URLs under which this
	// node serves the repository's notifications.
	NotificationXML string
	NotificationBin string
	Session         string // the session served in XML
	Serial          uint64
	StateTime       time.Time // when the current state was published; zero: none yet
	LastSuccess     time.Time // last successful poll of the origin
	LastError       time.Time // zero when none
	LastErr         string    // the last error's text
	// Role is what this node does for the repository: "standalone" (no
	// fleet), "holder" (it holds the fleet's lease and polls the origin),
	// "follower" (it installs the holder's states) or "solo" (a fleet
	// node polling alone while Redis is unreachable). Holder names the
	// node polling the origin; LastSuccess, LastError, LastErr and Errors
	// are that node's follower's (shared through Redis on a follower).
	Role, Holder string
	// FleetErr is this node's last fleet error for the repository (a head
	// it could not install, a lease it could not renew).
	FleetErr string
	// SnapshotXML and SnapshotBin are the sizes of the current snapshot
	// in each format; DeltasXML and DeltasBin the sums over the listed
	// deltas.
	SnapshotXML, SnapshotBin int64
	DeltasXML, DeltasBin     int64
	Deltas                   int // deltas listed in the notification
	Hits, Misses             uint64
	Requests                 uint64
	BytesOut                 uint64
	// Errors counts the follower's failures by kind (hash, gap,
	// desync, backwards, fetch, ...).
	Errors map[string]uint64
}

// Cache is the node's cache, all repositories together.
type Cache struct {
	PinnedBytes int64
	CachedBytes int64
	// ColdBytes are the pinned bytes only the state directory holds yet:
	// a serial's new segments, being read back into memory.
	ColdBytes int64
	Hits      uint64
	Misses    uint64
	Fills     uint64
	Shared    uint64
	// Tiers names the lower tiers ("disk", "redis") with the bytes each
	// holds, -1 when unknown.
	Tiers []Tier
}

// Tier is one lower tier of the cache.
type Tier struct {
	Name  string
	Bytes int64
}
