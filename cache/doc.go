// Package cache will implement the tiered, content-addressed store of
// rrdp-proxy: the pinned current state of every repository in memory,
// ristretto for the rest, and the disk and Redis tiers in cache/diskstore
// and cache/redisstore. Nothing is here yet.
package cache
