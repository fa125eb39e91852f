// Package proxy will implement the HTTP side of rrdp-proxy: the fasthttp
// server that serves every followed repository as RRDP XML (RFC 8182) and
// as iRPKI .bin, with the HTTP semantics of ../shared/DESIGN.md. Its
// subpackages proxy/upstream (the client towards origins) and proxy/follow
// (the RRDP client state machine) come with it. Nothing is here yet.
package proxy
