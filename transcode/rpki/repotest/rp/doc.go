// Package rp runs real RPKI relying parties (rpki-client, FORT) offline
// against a local RRDP origin, for tests.
package rp
