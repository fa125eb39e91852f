package irpki

import (
	"crypto/sha1"
	"fmt"
)

// sessionNamespace is the UUID namespace of derived session ids: a
// random version-4 UUID fixed for rrdp-proxy
// (3c1f4a52-9d7e-4b0a-8f61-2e5d7c9a0b14).
var sessionNamespace = [16]byte{0x3c, 0x1f, 0x4a, 0x52, 0x9d, 0x7e, 0x4b, 0x0a, 0x8f, 0x61, 0x2e, 0x5d, 0x7c, 0x9a, 0x0b, 0x14}

// DerivedSession returns the session id under which an edge node serves
// XML it regenerated from .bin: the name-based UUID (version 5, RFC 9562)
// of the upstream's session id in rrdp-proxy's namespace. Every node
// derives the same id, and it differs from the upstream's, so no relying
// party sees two different byte strings for one session and serial: the
// origin's XML under its session, ours under the derived one.
func DerivedSession(upstream string) string {
	h := sha1.New() // RFC 9562 version 5 is defined with SHA-1
	h.Write(sessionNamespace[:])
	h.Write([]byte(upstream))
	var u [20]byte
	h.Sum(u[:0])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
