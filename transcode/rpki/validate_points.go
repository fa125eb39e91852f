package rpki

import (
	"math/big"
	"time"
)

// Point is a publication point that validated, as Result.Points lists it
// (Config.KeepPoints): what the compact format re-issues, by URI in the
// validator's Source.
type Point struct {
	// TA names the trust anchor.
	TA string
	// URI is where the CA certificate was found (for a TA, as in
	// CAResult); Parent is the issuer's URI, "" for a TA.
	URI, Parent string
	// CA is the CA certificate, its resources resolved along the chain;
	// CA.Raw is its DER.
	CA *Cert
	// Manifest and CRL are the URIs of the accepted manifest and CRL.
	Manifest, CRL string
	// Objects are the URIs of the ROAs and ASPAs that validated, in the
	// manifest's order. Objects that failed are left out.
	Objects []string
	// ChainExpires is the earliest notAfter of the CA certificates from
	// the TA down to CA.
	ChainExpires time.Time
}

// point returns the Point of t's publication point, validated as pp.
func (t *caTask) point(pp *ppResult) Point {
	p := Point{TA: t.ta, URI: t.uri, CA: t.cert, Manifest: pp.mftURI, CRL: pp.crlURI, Objects: pp.valid, ChainExpires: t.expires}
	if t.parent != nil {
		p.Parent = t.parent.uri
	}
	return p
}

// VerifyIssued checks c as a certificate issued by issuer at now, as a
// validator does inside a publication point whose CRL the caller has
// checked: the signature, revoked (nil: nothing is revoked), the validity
// of both, and c's resources within issuer's (issuer's resolved). It
// returns c's resources with inherit resolved.
func (c *Cert) VerifyIssued(issuer *Cert, revoked func(serial []byte) bool, now time.Time) (Resources, error) {
	test := func(*big.Int) bool { return false }
	if revoked != nil {
		test = func(s *big.Int) bool { return revoked(s.Bytes()) }
	}
	return c.verifyIssued(issuer, test, now)
}

// Contains reports, as an error naming the first resource outside, whether
// child's resources (no inherit) are within r's: an overclaim wraps
// ErrOverclaim.
func (r Resources) Contains(child Resources) error {
	_, err := resolveResources(child, r)
	return err
}

// FinishVRPs sorts and deduplicates VRPs and ASPAs as Validate does for
// its Result (rpki-client's order and merging), and counts them in Stats.
func FinishVRPs(now time.Time, vrps []VRPOutput, aspas []ASPAOutput, stats Stats) *Result {
	r := &run{v: &Validator{numbers: map[string]*ppResult{}}, now: now, vrps: vrps, aspas: aspas}
	res := &Result{Time: now, Stats: stats}
	r.finish(res)
	res.Stats.Repositories = stats.Repositories
	return res
}
