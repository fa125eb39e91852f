package follow

import (
	"fmt"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
)

// servedSessions returns the sessions under which the proxy serves the
// state of upstream session u, origin format f, after resets downstream
// session resets: the .bin session is u itself until the first reset,
// then a name-based UUID of u and the reset count; the XML session is the
// .bin session for an XML origin and the one derived from it for a .bin
// origin (DESIGN.md). An edge that follows this proxy's .bin derives the
// same XML session. In transparent mode the XML is the origin's, under u
// whatever the resets.
func servedSessions(u string, f irpki.Format, resets uint64, transparent bool) (xml, bin string) {
	bin = u
	if resets > 0 {
		bin = irpki.DerivedSession(fmt.Sprintf("%s reset %d", u, resets))
	}
	xml = bin
	switch {
	case transparent:
		xml = u
	case f == irpki.FormatBin:
		xml = irpki.DerivedSession(bin)
	}
	return xml, bin
}

// Sessions returns the sessions of the notifications h serves, XML and
// .bin: Session itself for an XML origin without resets (and for the XML
// of a transparent head always), otherwise sessions derived from it (see
// Resets).
func (h *Head) Sessions() (xml, bin string) {
	return servedSessions(h.Session, h.Origin, h.Resets, h.Transparent)
}

// checkOrder refuses a head that would not move its served session
// forward: within one served session the serial only grows, so that the
// bytes published for a session, serial and format never change
// (DESIGN.md, invariant 2). The XML of a transparent head is the
// origin's, whose serials are the origin's affair: only its .bin session
// is checked.
func checkOrder(prev, next *Head) error {
	if prev == nil {
		return nil
	}
	px, pb := prev.Sessions()
	nx, nb := next.Sessions()
	if (px == nx && !next.Transparent || pb == nb) && next.Serial <= prev.Serial {
		return fmt.Errorf("head of session %s serial %d after serial %d: %w", nx, next.Serial, prev.Serial, ErrOrder)
	}
	return nil
}
