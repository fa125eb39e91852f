// Package proxy implements the HTTP side of rrdp-proxy: the fasthttp server
// that relying parties, CDNs and other rrdp-proxy nodes fetch RRDP
// repositories (RFC 8182) from, in XML and in the iRPKI .bin layout, with
// the HTTP semantics of RFC 9110 and RFC 9111 that ../shared/DESIGN.md asks
// for: strong ETags, Last-Modified, conditional requests, Cache-Control,
// gzip from precompressed copies, single byte ranges, HEAD, and nothing but
// GET and HEAD on configured routes.
//
// Each repository is served in one of two modes. In reverse-proxy mode it
// keeps its own host name and the directory of its origin's notification,
// so that a relying party knowing only the origin's URIs is served
// unchanged. In mirror mode many repositories share one host name, each at
// /<origin host>/<origin directory>/, and /index.json lists them. In both
// modes a follower (proxy/follow) publishes notifications naming the files
// at the repository's Base (see BaseURI), and the server answers from the
// heads and blobs of a cache.Cache, in memory, without a copy per request.
//
// A path under a repository that its head does not name (an old delta, a
// snapshot named by the origin's own notification) is fetched from the
// origin once, whatever the number of clients asking, checked against the
// hash the origin's notification gives for it, stored and served. A path
// the origin's notification does not name is 404: the server is never an
// open proxy.
//
// Operators get /metrics (Prometheus text format), /healthz, /readyz,
// /status (HTML) and /status.json.
package proxy
