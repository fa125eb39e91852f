// Package cache implements the tiered, content-addressed store of rrdp-proxy,
// which holds the RRDP (RFC 8182) and iRPKI files of every repository it
// serves: blobs keyed by the SHA-256 of their bytes, and one head per
// repository (a Head, the stored schema, versioned: headcodec.go) naming the
// blobs it makes servable. A big file is composite: a part list (parts.go)
// whose parts successive serials share.
//
// The current state of every repository, every file its head names and whose
// retention has not ended (RFC 8182 publication server BCP: two hours), is
// pinned in memory and never evicted. Everything else, older files and blobs
// filled from a lower tier, lives in a ristretto cache whose cost is bytes.
// Lower tiers (the disk of cache/diskstore, a shared Redis) sit behind the
// Tier interface: writes go through to every tier, blobs first and the head
// last (DESIGN.md, invariant 1), and a miss in memory fills from the first
// tier that holds the blob, checked against its key, with one fill per key
// however many callers miss at once.
//
// A Cache is a follow.Store: a follower publishes into it directly. Package
// cache imports nothing from proxy/: the follower imports the schema.
package cache
