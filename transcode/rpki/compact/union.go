package compact

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// A compact publication is per repository (what serve publishes under a
// repository's "compact/", or rrdp-proxy compact --repository), while a
// tree crosses repositories: a CA may publish under its own publication
// server (Krill's delegated CAs), its certificate in its issuer's
// repository. A client that follows several publications verifies the
// chains across their union, as a relying party does across RRDP
// repositories: a group's issuer may be in any of them.

// Skip is a CA group left out of the VRPs of a union without failing its
// publication: its issuer's group is in no publication followed (as when a
// relying party cannot reach the issuer's repository), or cannot vouch for
// it, or the group is in two publications.
type Skip struct {
	// Feed names the publication holding the group (Feed.Name).
	Feed string
	// CA is the group's URI; Issuer its issuer's group URI, when the
	// issuer is why.
	CA, Issuer string
	// Reason says why, as a phrase.
	Reason string
	// Below counts the groups under CA left out with it.
	Below int

	missing bool // the issuer's group is in no state
}

func (s Skip) String() string {
	var below string
	if s.Below > 0 {
		below = fmt.Sprintf(", and the %d CAs below it", s.Below)
	}
	if s.Feed == "" {
		return fmt.Sprintf("CA %s left out%s: %s", s.CA, below, s.Reason)
	}
	return fmt.Sprintf("%s: CA %s left out%s: %s", s.Feed, s.CA, below, s.Reason)
}

// union is what verifyUnion found.
type union struct {
	res *rpki.Result // over the groups that verified
	// failed holds, by state index, the first failure of a group of that
	// state (an *Error naming the group and entry).
	failed map[int]error
	skips  []Skip
}

// verifyUnion verifies the groups of states (nil entries are skipped)
// together, at now, with trust, a group's issuer taken from whichever
// state holds it, and returns the VRPs and ASPAs of the groups that
// verified. names name the states in skips. prev holds the groups
// accepted before, by URI, for the iMFT replay check. A group that fails
// counts against its own state (union.failed), not those of its issuers;
// a group whose issuer's group is in no state is skipped with the groups
// below it.
//
// A state marked kept was verified before as a whole: a group of it that
// fails now (an iMFT expired since, or revoked by its issuer's newer iMFT)
// is skipped, not a failure of the state. A group whose CA fails against
// an issuer in another state is skipped too (issuerError): two
// publications fetched at different moments may disagree for a while.
func verifyUnion(states []*State, kept []bool, names []string, now time.Time, trust Trust, prev map[string]*irpkipb.CompactCA) *union {
	u := &union{failed: map[int]error{}}
	fail := func(i int, err error) {
		if u.failed[i] == nil {
			u.failed[i] = err
		}
	}
	// A group in two states is taken from the first; a relying party
	// would take an object from the repository its CA names, which
	// compact does not carry for every group.
	owner := map[string]int{}
	for i, s := range states {
		if s == nil {
			continue
		}
		for _, uri := range slices.Sorted(maps.Keys(s.groups)) {
			if j, ok := owner[uri]; ok {
				u.skips = append(u.skips, Skip{Feed: names[i], CA: uri, Reason: "the same CA group is in " + names[j] + ", whose group is used"})
				continue
			}
			owner[uri] = i
		}
	}
	group := func(uri string) *irpkipb.CompactCA { return states[owner[uri]].groups[uri] }
	uris := slices.Sorted(maps.Keys(owner))
	children := map[string][]string{}
	var level []string
	skipped := map[string]*Skip{} // the roots of what is skipped, by URI
	var roots []string
	for _, uri := range uris {
		g := group(uri)
		switch _, ok := owner[g.Parent]; {
		case g.Parent == "":
			level = append(level, uri)
		case !ok:
			skipped[uri] = &Skip{Feed: names[owner[uri]], CA: uri, Issuer: g.Parent, missing: true,
				Reason: "its issuer's group " + g.Parent + " is in no publication followed"}
			roots = append(roots, uri)
		default:
			children[g.Parent] = append(children[g.Parent], uri)
		}
	}
	var vrps []rpki.VRPOutput
	var aspas []rpki.ASPAOutput
	var stats rpki.Stats
	tas, repos := map[string]bool{}, map[string]bool{}
	done := map[string]*checked{}
	stopped := map[string]bool{} // failed: the groups below are not reached
	for len(level) > 0 {
		slices.Sort(level)
		var next []string
		for _, uri := range level {
			g, i := group(uri), owner[uri]
			var parent *checked
			if g.Parent != "" {
				parent = done[g.Parent]
				// Within a publication the producer never puts a
				// certificate under a record (verifyCA rejects it as
				// malformed); across two, each made with its own
				// setting, it is no fault of this one's.
				if j := owner[g.Parent]; g.Certificate != nil && parent.cert.Raw == nil && j != i {
					skipped[uri] = &Skip{Feed: names[i], CA: uri, Issuer: g.Parent,
						Reason: "its issuer's group " + g.Parent + " in " + names[j] + " carries a CA record (--omit-certificates), against which its CA certificate's signature cannot be checked"}
					roots = append(roots, uri)
					continue
				}
			}
			c, v, a, err := verifyGroup(g, parent, now, trust, prev)
			if err != nil {
				e := &Error{Group: uri, Entry: entryOf(err), Err: unwrapEntry(err)}
				var ie *issuerError
				switch j := owner[g.Parent]; {
				case g.Parent != "" && j != i && errors.As(err, &ie):
					// The publications disagree (one is newer than the
					// other, say): this CA is left out, as a relying
					// party leaves out a CA whose certificate fails.
					skipped[uri] = &Skip{Feed: names[i], CA: uri, Issuer: g.Parent,
						Reason: "it does not verify against its issuer's group " + g.Parent + " in " + names[j] + ": " + e.Error()}
					roots = append(roots, uri)
				case kept[i]:
					skipped[uri] = &Skip{Feed: names[i], CA: uri, Reason: "in the state kept, it no longer verifies: " + e.Error()}
					roots = append(roots, uri)
				default:
					fail(i, e)
					stopped[uri] = true
				}
				continue
			}
			done[uri] = c
			for k := range v {
				v[k].TA = g.Ta
			}
			for k := range a {
				a[k].TA = g.Ta
			}
			vrps, aspas = append(vrps, v...), append(aspas, a...)
			stats.Certificates++
			stats.Manifests++
			stats.CRLs++
			stats.ROAs += countExt(g, ".roa")
			stats.ASPAs += countExt(g, ".asa")
			if g.Parent == "" {
				tas[g.Ta] = true
				repos[g.Ta+" ta:"+g.Uri] = true
			}
			repos[g.Ta+" "+repository(c.cert)] = true
			next = append(next, children[uri]...)
		}
		level = next
	}
	// What is below a skipped group is skipped with it; below a failed
	// one, it is not reached this time (its state is refused, and the
	// caller verifies again without it). The rest is in a loop.
	reached := map[string]bool{}
	var mark func(uri string) int
	mark = func(uri string) int {
		n := 0
		for _, c := range children[uri] {
			if !reached[c] {
				reached[c] = true
				n += 1 + mark(c)
			}
		}
		return n
	}
	for _, uri := range roots {
		reached[uri] = true
	}
	for _, uri := range roots {
		skipped[uri].Below = mark(uri)
		u.skips = append(u.skips, *skipped[uri])
	}
	for uri := range stopped {
		mark(uri)
	}
	for _, uri := range uris {
		if done[uri] == nil && !stopped[uri] && !reached[uri] {
			fail(owner[uri], &Error{Group: uri, Err: fmt.Errorf("%w: not reachable from a trust anchor (a loop of issuers)", ErrMalformed)})
		}
	}
	stats.TALs = len(tas)
	stats.Repositories = len(repos)
	u.res = rpki.FinishVRPs(now, vrps, aspas, stats)
	return u
}
