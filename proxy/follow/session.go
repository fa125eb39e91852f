package follow

import (
	"fmt"

	"github.com/irpki/rrdp-proxy/cache"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
)

// servedSessions returns the sessions of the served notifications
// (cache.ServedSessions).
func servedSessions(u string, f irpki.Format, resets uint64, transparent bool) (xml, bin string) {
	return cache.ServedSessions(u, f, resets, transparent)
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
