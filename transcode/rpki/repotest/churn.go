package repotest

import (
	"math/rand/v2"
	"slices"
	"time"
)

// change is what one step changed: the files to rebuild per publication
// point (by CA ID) and the URIs to withdraw.
type change struct {
	points    map[int]*work
	withdrawn []string
	touched   map[string]bool // URIs published in this step
	taCert    bool            // the TA certificate was reissued
}

func newChange() *change {
	return &change{points: map[int]*work{}, touched: map[string]bool{}}
}

// mark records that name in ca's publication point changes ("" for just
// the manifest and CRL).
func (c *change) mark(s *state, ca *caState, name string) {
	w := c.points[ca.ID]
	if w == nil {
		w = &work{ca: ca, names: map[string]bool{}}
		c.points[ca.ID] = w
	}
	if name != "" {
		w.names[name] = true
		c.touched[s.dir(ca)+name] = true
	}
}

// step changes the state for one serial at now: with churn, a member CA
// removed and one added, and ROAs added, replaced and withdrawn; then
// whatever the time requires (manifests and CRLs near their nextUpdate,
// certificates near their expiry); then a new manifest and CRL in every
// publication point that changed.
func (s *state) step(now time.Time, churn bool) *change {
	c := newChange()
	if churn {
		rng := s.rng("step", s.Steps)
		s.Steps++
		s.removeCA(c, rng, now)
		s.churnCA(c, rng, now)
		s.churnROAs(c, rng, now)
	}
	s.settle(c, now)
	return c
}

// settle ends the step that made c: whatever the time requires at now,
// then a new manifest and CRL in every publication point that changed.
func (s *state) settle(c *change, now time.Time) {
	s.refresh(c, now)
	for _, w := range c.points {
		w.ca.reissue(now)
	}
	if unix(now) > s.Now {
		s.Now = unix(now)
	}
}

// removeCA removes a member that holds the fewest ROAs, if more than one
// member exists: its certificate is revoked and withdrawn, and so is every
// file of its publication point.
func (s *state) removeCA(c *change, rng *rand.Rand, now time.Time) {
	members := s.members()
	if len(members) < 2 {
		return
	}
	least := slices.MinFunc(members, func(a, b *caState) int { return len(a.ROAs) - len(b.ROAs) })
	var cands []*caState
	for _, ca := range members {
		if len(ca.ROAs) == len(least.ROAs) {
			cands = append(cands, ca)
		}
	}
	s.dropMember(c, cands[rng.IntN(len(cands))], now)
}

// dropMember removes member ca: its parent revokes and withdraws its
// certificate, and every file of its publication point is withdrawn.
func (s *state) dropMember(c *change, ca *caState, now time.Time) {
	parent := s.CAs[ca.Parent]
	for _, name := range s.names(ca) {
		c.withdrawn = append(c.withdrawn, s.dir(ca)+name)
	}
	c.withdrawn = append(c.withdrawn, s.dir(parent)+ca.certName())
	parent.revoke(ca.Cert, now)
	parent.Children = slices.DeleteFunc(parent.Children, func(id int) bool { return id == ca.ID })
	c.mark(s, parent, "")
	s.CAs[ca.ID] = nil
}

// churnCA adds a member with two ROAs under a random parent.
func (s *state) churnCA(c *change, rng *rand.Rand, now time.Time) {
	parents := s.parents()
	parent := parents[rng.IntN(len(parents))]
	ca := s.addMember(parent, now)
	s.allocate(ca, 2)
	s.addROA(ca, now)
	s.addROA(ca, now)
	c.mark(s, parent, ca.certName())
	c.mark(s, ca, "")
	c.points[ca.ID].all = true
	for _, name := range s.names(ca) {
		c.touched[s.dir(ca)+name] = true
	}
}

// churnROAs adds, replaces and withdraws ROAs in random members: one of
// each per thousand members, at least one.
func (s *state) churnROAs(c *change, rng *rand.Rand, now time.Time) {
	members := s.members()
	k := 1 + len(members)/1000
	for range k {
		ca := members[rng.IntN(len(members))]
		if r, ok := s.addROA(ca, now); ok {
			c.mark(s, ca, roaName(r.Slot))
		}

		ca = members[rng.IntN(len(members))]
		if i, ok := s.pickROA(c, ca, rng); ok {
			r := &ca.ROAs[i]
			ca.revoke(r.eeState, now)
			r.Ver++
			r.eeState = ca.newEE(now, eeValidity)
			c.mark(s, ca, roaName(r.Slot))
		}

		ca = members[rng.IntN(len(members))]
		if len(ca.ROAs) < 2 {
			continue
		}
		if i, ok := s.pickROA(c, ca, rng); ok {
			r := ca.ROAs[i]
			ca.revoke(r.eeState, now)
			ca.ROAs = slices.Delete(ca.ROAs, i, i+1)
			c.withdrawn = append(c.withdrawn, s.dir(ca)+roaName(r.Slot))
			c.mark(s, ca, "")
		}
	}
}

// pickROA picks a ROA of ca not yet changed in this step.
func (s *state) pickROA(c *change, ca *caState, rng *rand.Rand) (int, bool) {
	if len(ca.ROAs) == 0 {
		return 0, false
	}
	for range 8 {
		i := rng.IntN(len(ca.ROAs))
		if !c.touched[s.dir(ca)+roaName(ca.ROAs[i].Slot)] {
			return i, true
		}
	}
	return 0, false
}

// refresh reissues what the time requires at now: manifests and CRLs
// that get close to their nextUpdate, certificates close to their expiry.
func (s *state) refresh(c *change, now time.Time) {
	soon := unix(now.Add(certRenewBefore))
	ta := s.CAs[0]
	if ta.Cert.NotAfter < soon {
		ta.Cert = eeState{Serial: ta.Cert.Serial + 1, NotBefore: unix(now.Add(-backdate)), NotAfter: unix(now.Add(taValidity))}
		c.taCert = true
	}
	for _, ca := range s.CAs {
		if ca == nil {
			continue
		}
		if ca.NextUpdate < unix(now.Add(manifestRenew)) {
			c.mark(s, ca, "")
		}
		if ca.Parent >= 0 && ca.Cert.NotAfter < soon {
			parent := s.CAs[ca.Parent]
			parent.revoke(ca.Cert, now)
			ca.Cert = parent.newEE(now, caValidity)
			c.mark(s, parent, ca.certName())
		}
		for i := range ca.ROAs {
			r := &ca.ROAs[i]
			if r.NotAfter < soon {
				ca.revoke(r.eeState, now)
				r.eeState = ca.newEE(now, eeValidity)
				c.mark(s, ca, roaName(r.Slot))
			}
		}
		if a := ca.ASPA; a != nil && a.NotAfter < soon {
			ca.revoke(a.eeState, now)
			a.eeState = ca.newEE(now, eeValidity)
			c.mark(s, ca, ca.aspaName())
		}
	}
}
