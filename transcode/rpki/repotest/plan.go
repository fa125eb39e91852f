package repotest

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"
)

// newState plans a new repository of cfg, valid at now.
func newState(cfg Config, now time.Time) (*state, error) {
	p := cfg.Profile
	if err := p.check(); err != nil {
		return nil, err
	}
	first, err := newServer(cfg.BaseURL, "", "repo")
	if err != nil {
		return nil, err
	}
	s := &state{
		Version: stateVersion, Seed: cfg.Seed, Profile: p, server: *first,
		Now:    unix(now),
		NextV4: firstV4, NextV6: firstV6,
	}
	if cfg.Split != "" {
		if s.Split, err = newServer(cfg.Split, splitDir, splitDir); err != nil {
			return nil, fmt.Errorf("split: %w", err)
		}
		if s.Split.BaseURL == s.BaseURL {
			return nil, fmt.Errorf("split base URL %q: the same as the base URL", cfg.Split)
		}
		s.Split.SessionID = s.sessionID(s.Split, 0)
	}
	s.SessionID = s.sessionID(&s.server, 0)
	rng := s.rng("create", 0)

	ta := &caState{ID: 0, Parent: -1, All: true, NextSerial: 1,
		Cert: eeState{Serial: 1, NotBefore: unix(now.Add(-backdate)), NotAfter: unix(now.Add(taValidity))}}
	s.CAs = append(s.CAs, ta)
	s.NextCA = 1
	parents := []*caState{ta}
	if p.Intermediates > 0 {
		parents = nil
		for range p.Intermediates {
			ca := s.addCA(ta, now)
			ca.All = true
			parents = append(parents, ca)
		}
	}
	counts := spread(p.ROAs, p.Members, p.Skew, rng)
	for i, n := range counts {
		ca := s.addMember(parents[i%len(parents)], now)
		s.allocate(ca, n)
		for range n {
			s.addROA(ca, now)
		}
		if i < p.ASPAs {
			ca.ASPA = &roaState{eeState: ca.newEE(now, eeValidity)}
		}
	}
	for _, ca := range s.CAs {
		ca.reissue(now)
	}
	return s, nil
}

// newServer returns a repository served at baseURL whose files are in
// dir, its publication points under rsync://HOST/module/.
func newServer(baseURL, dir, module string) (*server, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q: want https://HOST[:PORT]/[PATH/]", baseURL)
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	return &server{Dir: dir, BaseURL: baseURL, RsyncBase: "rsync://" + u.Hostname() + "/" + module + "/"}, nil
}

// addMember adds a member CA under parent: in a split tree, a member
// with an odd ID is delegated (it publishes in the second repository).
func (s *state) addMember(parent *caState, now time.Time) *caState {
	ca := s.addCA(parent, now)
	ca.Delegated = s.Split != nil && ca.ID%2 == 1
	return ca
}

// rng returns the pseudo-random generator of an operation.
func (s *state) rng(label string, n uint64) *rand.Rand {
	return rand.New(rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "repotest %d rng %s %d", s.Seed, label, n))))
}

// spread divides total ROAs among n members, at least one each: evenly, or
// by a power law of exponent skew over a random order of the members.
func spread(total, n int, skew float64, rng *rand.Rand) []int {
	counts := make([]int, n)
	for i := range counts {
		counts[i] = 1
	}
	rest := total - n
	if rest == 0 {
		return counts
	}
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = 1 / math.Pow(float64(i+1), skew)
		sum += w[i]
	}
	order := rng.Perm(n)
	given := 0
	for rank, i := range order {
		c := int(float64(rest) * w[rank] / sum)
		counts[i] += c
		given += c
	}
	for k := 0; given < rest; k++ {
		counts[order[k%n]]++
		given++
	}
	return counts
}

// addCA adds a CA under parent, its certificate valid from now.
func (s *state) addCA(parent *caState, now time.Time) *caState {
	ca := &caState{ID: s.NextCA, Parent: parent.ID, NextSerial: 1, Cert: parent.newEE(now, caValidity)}
	s.NextCA++
	s.CAs = append(s.CAs, ca)
	parent.Children = append(parent.Children, ca.ID)
	return ca
}

// allocate gives member ca room for n ROAs in IPv4 (and 65,536 in IPv6)
// plus some for churn.
func (s *state) allocate(ca *caState, n int) {
	ca.V4Base = s.NextV4
	ca.V4Size = uint32(n + n/4 + 4)
	s.NextV4 += ca.V4Size
	ca.V6Base = s.NextV6
	s.NextV6++
}

// addROA adds a ROA in the next free slot of ca, if there is one.
func (s *state) addROA(ca *caState, now time.Time) (roaState, bool) {
	if ca.NextSlot >= v6Slots {
		return roaState{}, false
	}
	r := roaState{Slot: ca.NextSlot, eeState: ca.newEE(now, eeValidity)}
	ca.NextSlot++
	ca.ROAs = append(ca.ROAs, r)
	return r, true
}

// newEE allocates a certificate that ca issues at now, valid for d.
func (ca *caState) newEE(now time.Time, d time.Duration) eeState {
	e := eeState{Serial: ca.NextSerial, NotBefore: unix(now.Add(-backdate)), NotAfter: unix(now.Add(d))}
	ca.NextSerial++
	return e
}

// revoke adds a certificate of ca to its CRL.
func (ca *caState) revoke(e eeState, now time.Time) {
	ca.Revoked = append(ca.Revoked, revokedState{Serial: e.Serial, Time: unix(now), Expires: e.NotAfter})
}

// reissue advances ca's manifest and CRL: a new number, a new EE
// certificate for the manifest, thisUpdate an hour before now (and after
// the previous one), nextUpdate a few days after now; revoked certificates
// that have expired leave the CRL.
func (ca *caState) reissue(now time.Time) {
	ca.Number++
	ca.ThisUpdate = max(unix(now.Add(-manifestBackdate)), ca.ThisUpdate+1)
	ca.NextUpdate = unix(now.Add(manifestValidity))
	ca.MftEE = ca.NextSerial
	ca.NextSerial++
	ca.Revoked = slices.DeleteFunc(ca.Revoked, func(r revokedState) bool { return r.Expires < unix(now) })
}

// names lists the files of ca's publication point.
func (s *state) names(ca *caState) []string {
	var names []string
	for _, id := range ca.Children {
		names = append(names, s.CAs[id].certName())
	}
	for _, r := range ca.ROAs {
		names = append(names, roaName(r.Slot))
	}
	if ca.ASPA != nil {
		names = append(names, ca.aspaName())
	}
	return append(names, ca.crlName(), ca.mftName())
}

// members returns the member CAs (those that hold ROAs), by ID.
func (s *state) members() []*caState {
	var out []*caState
	for _, ca := range s.CAs {
		if ca != nil && !ca.All {
			out = append(out, ca)
		}
	}
	return out
}

// parents returns the CAs that issue member certificates.
func (s *state) parents() []*caState {
	var out []*caState
	for _, ca := range s.CAs {
		if ca != nil && ca.All && ca.Parent >= 0 {
			out = append(out, ca)
		}
	}
	if out == nil {
		out = []*caState{s.CAs[0]}
	}
	return out
}
