package validate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// sampleSize caps the VRPs and CAs a run record names.
const sampleSize = 10

// change is what one state changes against another, validated at the
// same time or one after the other.
type change struct {
	before, after            *rpki.Result
	added, removed           []rpki.VRPOutput
	addedASPAs, removedASPAs int
	// newlyFailing are CAs valid before and failing after, with the
	// reason; newlyValid the reverse.
	newlyFailing []rpki.CAResult
	newlyValid   []rpki.CAResult
}

// compare returns what after changes against before (nil: nothing was
// served before, everything is added).
func compare(before, after *rpki.Result) *change {
	c := &change{before: before, after: after}
	var bv []rpki.VRPOutput
	var ba []rpki.ASPAOutput
	if before != nil {
		bv, ba = before.VRPs, before.ASPAs
	}
	// Both sorted by CompareVRPOutput and unique.
	i, j := 0, 0
	for i < len(bv) || j < len(after.VRPs) {
		switch {
		case j == len(after.VRPs):
			c.removed = append(c.removed, bv[i])
			i++
		case i == len(bv):
			c.added = append(c.added, after.VRPs[j])
			j++
		default:
			switch d := rpki.CompareVRPOutput(bv[i], after.VRPs[j]); {
			case d < 0:
				c.removed = append(c.removed, bv[i])
				i++
			case d > 0:
				c.added = append(c.added, after.VRPs[j])
				j++
			default:
				i++
				j++
			}
		}
	}
	// ASPAs, sorted by customer: a changed provider set counts as one
	// removed and one added.
	i, j = 0, 0
	for i < len(ba) || j < len(after.ASPAs) {
		switch {
		case j == len(after.ASPAs):
			c.removedASPAs++
			i++
		case i == len(ba):
			c.addedASPAs++
			j++
		case ba[i].CustomerASID < after.ASPAs[j].CustomerASID:
			c.removedASPAs++
			i++
		case ba[i].CustomerASID > after.ASPAs[j].CustomerASID:
			c.addedASPAs++
			j++
		default:
			if !slices.Equal(ba[i].Providers, after.ASPAs[j].Providers) {
				c.removedASPAs++
				c.addedASPAs++
			}
			i++
			j++
		}
	}
	if before != nil {
		was := caStates(before)
		for _, ca := range after.CAs {
			ok, known := was[caKey(ca)]
			switch {
			case !known:
			case ok && ca.Err != nil:
				c.newlyFailing = append(c.newlyFailing, ca)
			case !ok && ca.Err == nil:
				c.newlyValid = append(c.newlyValid, ca)
			}
		}
	}
	return c
}

func caKey(ca rpki.CAResult) string { return ca.TA + " " + ca.URI }

// caStates says for each CA of res whether it validated.
func caStates(res *rpki.Result) map[string]bool {
	m := make(map[string]bool, len(res.CAs))
	for _, ca := range res.CAs {
		k := caKey(ca)
		ok, seen := m[k]
		m[k] = (ok || !seen) && ca.Err == nil
	}
	return m
}

// judge returns the rules c breaks, in words.
func (r Rules) judge(c *change) []string {
	if c.before == nil {
		return nil
	}
	var out []string
	if n := len(c.before.VRPs); r.MaxVRPLoss > 0 && n > 0 && float64(len(c.removed)) > r.MaxVRPLoss*float64(n) {
		out = append(out, fmt.Sprintf("removes %d of %d VRPs (%s), more than %s", len(c.removed), n, pct(float64(len(c.removed))/float64(n)), pct(r.MaxVRPLoss)))
	}
	if n := len(c.before.ASPAs); r.MaxASPALoss > 0 && n > 0 && float64(c.removedASPAs) > r.MaxASPALoss*float64(n) {
		out = append(out, fmt.Sprintf("removes %d of %d ASPAs, more than %s", c.removedASPAs, n, pct(r.MaxASPALoss)))
	}
	if r.CAInvalid && len(c.newlyFailing) > 0 {
		var names []string
		for _, ca := range c.newlyFailing[:min(3, len(c.newlyFailing))] {
			names = append(names, ca.URI+": "+ca.Err.Error())
		}
		more := ""
		if n := len(c.newlyFailing) - len(names); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		out = append(out, fmt.Sprintf("makes %d valid CAs invalid: %s%s", len(c.newlyFailing), strings.Join(names, "; "), more))
	}
	return out
}

// vrpStrings names the first sampleSize VRPs of vs as rpki-client's CSV
// does (AS64512,10.0.0.0/24,24).
func vrpStrings(vs []rpki.VRPOutput) []string {
	var out []string
	for _, v := range vs[:min(sampleSize, len(vs))] {
		out = append(out, v.String())
	}
	return out
}

func caStrings(cas []rpki.CAResult) []string {
	var out []string
	for _, ca := range cas[:min(sampleSize, len(cas))] {
		s := ca.URI
		if ca.Err != nil {
			s += ": " + ca.Err.Error()
		}
		out = append(out, s)
	}
	return out
}
