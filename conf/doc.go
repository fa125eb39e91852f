// Package conf implements the TOML configuration of rrdp-proxy (TOML 1.0,
// decoded strictly): the [server], [cache] and [cache.redis] tables and one
// [[repository]] table per RRDP repository (RFC 8182) followed. It loads and
// validates a file, fills the defaults, and maps the result onto the Config
// structs of upstream, follow, cache, diskstore and redisstore. Every error
// names the file, the line and the key: "rrdp-proxy.toml:12:
// repository[0].origin: ...".
//
// Only conf and cmd read files, flags or the environment: conf reads the
// configuration, the CA and TLS files it names, and the Redis password from
// RRDP_PROXY_REDIS_PASSWORD.
package conf
