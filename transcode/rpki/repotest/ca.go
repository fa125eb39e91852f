package repotest

import (
	"fmt"
	"time"
)

// CA describes one CA of a repository's tree.
type CA struct {
	ID int
	// Parent is the ID of the issuer, -1 for the TA.
	Parent int
	// URI is the rsync URI of its publication point and Notify the
	// notification URI of the RRDP repository it publishes in.
	URI, Notify string
	// Delegated says it publishes in the second repository of a split
	// tree (Config.Split).
	Delegated bool
	// Member says it holds ROAs (the TA and intermediates only issue).
	Member bool
	ROAs   int
}

// CAs returns the CAs of the tree, by ID, the TA first.
func (r *Repo) CAs() []CA {
	s := r.s
	var out []CA
	for _, ca := range s.CAs {
		if ca == nil {
			continue
		}
		out = append(out, CA{ID: ca.ID, Parent: ca.Parent, URI: s.dir(ca), Notify: s.notifyURI(ca),
			Delegated: ca.Delegated, Member: !ca.All, ROAs: len(ca.ROAs)})
	}
	return out
}

// RemoveCA removes the member CA with id at now, in one serial of every
// repository that changes: its parent revokes its certificate and
// withdraws it (with a new CRL and manifest), and its publication point's
// files are withdrawn; the rest of the serial is what the time requires
// (as for Advance), without churn. For a delegated CA the parent's part is
// in the first repository and the point's in the second: each gets a
// serial, and a relying party that has fetched only the first one's
// already sees the CA's objects go.
func (r *Repo) RemoveCA(now time.Time, id int) error {
	s := r.s
	if id <= 0 || id >= len(s.CAs) || s.CAs[id] == nil || s.CAs[id].All {
		return fmt.Errorf("remove CA %d: no such member CA", id)
	}
	ca := s.CAs[id]
	return r.run(now, false, 1, func() *change {
		c := newChange()
		s.dropMember(c, ca, now)
		s.settle(c, now)
		return c
	})
}
