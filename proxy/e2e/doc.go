// Package e2e holds the end-to-end tests of rrdp-proxy: real relying
// parties (rpki-client 8.2 and FORT 1.5.4) validating a repository served
// by Debian's nginx through two rrdp-proxy nodes, a core that follows the
// origin's RRDP XML (RFC 8182) and an edge that follows the core's iRPKI
// notification.bin and serves regenerated XML over TLS at the address the
// repository's certificates name; and the `rrdp-proxy sync` command,
// whose trees must be byte for byte the same whether it follows the
// core's notification.xml or its notification.bin.
//
// The nodes are composed in the tests from the packages (proxy/follow,
// cache, proxy), as the serve command composes them. The package has no
// code of its own.
package e2e
