package rpki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config tunes a Validator. The zero value works: every zero field takes
// the default named in its comment.
type Config struct {
	// Source gives the objects by rsync URI. Required.
	Source Source
	// FetchTA fetches the TA certificate from an https URI of a TAL when
	// neither the caller nor Source has it; the fetch must carry its own
	// deadline and size cap. Nil: TA certificates are not fetched.
	FetchTA func(ctx context.Context, uri string) ([]byte, error)
	// Workers is the number of goroutines checking signatures
	// (runtime.GOMAXPROCS).
	Workers int
	// MaxDepth caps the CA certificates between a TA and a signed object,
	// the TA included (32, FORT's default; rpki-client stops at 12).
	MaxDepth int
	// MaxObjectSize caps the size of one object (4 MiB, as rpki-client).
	MaxObjectSize int64
	// MaxManifestFiles caps the files one manifest may list (100,000).
	MaxManifestFiles int
	// MaxCAs caps the CA certificates accepted below one TA (1,000,000);
	// the publication points past it fail.
	MaxCAs int
	// KeepPoints fills Result.Points (see Point).
	KeepPoints bool
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 32
	}
	if c.MaxObjectSize <= 0 {
		c.MaxObjectSize = 4 << 20
	}
	if c.MaxManifestFiles <= 0 {
		c.MaxManifestFiles = 100000
	}
	if c.MaxCAs <= 0 {
		c.MaxCAs = 1 << 20
	}
	return c
}

// Validator validates RPKI trees (RFC 6487, RFC 9286, RFC 9582, ASPA) from
// trust anchors to VRPs and ASPAs. It remembers the result of every
// publication point between runs (see the package documentation), so a
// long-lived Validator revalidates only what changed. Its methods may be
// called concurrently; runs are serialised.
type Validator struct {
	cfg Config

	mu sync.Mutex
	// cache holds the result of each publication point of the last run,
	// by what it depends on.
	cache map[ppKey]*ppResult
	// numbers holds the manifest last accepted per manifest URI, for the
	// manifest number rule (RFC 9286 section 4.2.1).
	numbers map[string]*ppResult
	// objects holds the outcome of each object of the last run (see
	// run.checkObject).
	objects map[objKey]objectOutcome
}

// NewValidator returns a Validator for cfg.
func NewValidator(cfg Config) (*Validator, error) {
	if cfg.Source == nil {
		return nil, errors.New("new validator: no Source")
	}
	return &Validator{cfg: cfg.withDefaults(), cache: map[ppKey]*ppResult{}, numbers: map[string]*ppResult{}, objects: map[objKey]objectOutcome{}}, nil
}

// Clone returns a Validator with v's configuration and a copy of its
// memory of earlier runs (the results of publication points, the manifest
// numbers accepted, the object outcomes), which it shares with v: both
// treat it as immutable. A trial run on the clone leaves v as it was, so a
// caller can validate a candidate state and keep or drop the outcome
// (proxy/validate's gate does).
func (v *Validator) Clone() *Validator {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &Validator{cfg: v.cfg, cache: maps.Clone(v.cache), numbers: maps.Clone(v.numbers), objects: maps.Clone(v.objects)}
}

// TrustAnchor is one TAL to validate from.
type TrustAnchor struct {
	// Name names the TA in the output: rpki-client uses the TAL's file
	// name without ".tal".
	Name string
	TAL  *TrustAnchorLocator
	// Cert is a TA certificate the caller found (the file beside the TAL,
	// named like the last part of a URI), or nil. It is used only if it
	// holds the TAL's key and verifies; otherwise the validator looks for
	// the TAL's rsync URIs in the Source, then fetches its https URIs.
	Cert []byte
	// CertFile names where Cert came from, for messages.
	CertFile string
}

// Result is the outcome of one validation run.
type Result struct {
	Time time.Time
	// VRPs are unique by ASN, prefix and maximum length, in rpki-client's
	// order (see CompareVRPOutput); Expires is the latest of the
	// duplicates'.
	VRPs []VRPOutput
	// ASPAs are unique by customer AS, sorted by it.
	ASPAs []ASPAOutput
	// CAs lists every CA certificate reached, trust anchors included,
	// valid or not, sorted by TA and URI.
	CAs []CAResult
	// Problems lists every object rejected, sorted by URI.
	Problems []*ObjectError
	Stats    Stats
	// StableUntil is the last instant at which the validation of the same
	// objects gives the same VRPs, ASPAs and valid CAs: the earliest end
	// of a validity period (certificate, manifest, CRL) checked in a
	// publication point that validated, or of a TA certificate. Zero: no
	// bound. What failed only for being not yet valid may validate
	// earlier.
	StableUntil time.Time
	// Points lists the publication points that validated, with Config.KeepPoints.
	Points []Point
}

// VRPOutput is a VRP with the TA it validated under and the time it
// expires, as rpki-client 8.2 computes it: the earliest notAfter of the
// certificates of its chain (EE to TA) and the nextUpdate of its issuer's
// CRL.
type VRPOutput struct {
	VRP
	TA      string
	Expires time.Time
}

// ASPAOutput is a validated ASPA: the customer AS and its providers (AFI
// 0 for both families, 1 or 2 for a version 0 AFI limit), sorted by AS.
type ASPAOutput struct {
	CustomerASID uint32
	Providers    []ASPAProvider
	TA           string
	Expires      time.Time
}

// CAResult says how one CA certificate (and its publication point) fared.
type CAResult struct {
	TA string
	// URI is where the CA certificate was found (the TA's: the TAL URI or
	// file it came from).
	URI      string
	Subject  string
	Manifest string
	// Err is why the CA or its publication point failed; nil when valid.
	// Objects rejected inside a valid publication point are in Problems.
	Err error
	// ManifestNumber is the accepted manifest's number, "" on failure.
	ManifestNumber string
	// VRPs and ASPAs count what the publication point yielded; Rejected
	// counts its objects rejected.
	VRPs, ASPAs, Rejected int
	// Reused reports a publication point unchanged since the previous run,
	// whose result was reused.
	Reused bool
}

// ObjectError is a rejected object: its URI, the CA whose publication
// point holds it, and why.
type ObjectError struct {
	URI string
	CA  string
	Err error
}

func (e *ObjectError) Error() string { return e.URI + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *ObjectError) Unwrap() error { return e.Err }

// Stats counts objects the way rpki-client's output metadata does. Failed
// objects could not be parsed or verified; invalid ones verified but claim
// resources their certificate lacks.
type Stats struct {
	ROAs, FailedROAs, InvalidROAs              int
	ASPAs, FailedASPAs, InvalidASPAs           int
	Certificates, InvalidCertificates          int
	TALs, InvalidTALs                          int
	Manifests, FailedManifests, StaleManifests int
	CRLs, GBRs                                 int
	// Repositories counts distinct repositories: the RRDP notification
	// URIs of the CAs (or their rsync host when they name none), plus
	// one per TA.
	Repositories      int
	VRPs, UniqueVRPs  int
	VAPs, UniqueVAPs  int
	ReusedPoints      int
	RevalidatedPoints int
}

// Errors the validator wraps, for callers that branch on them.
var (
	// ErrStale: a manifest or CRL is past its nextUpdate.
	ErrStale = errors.New("stale")
	// ErrOverclaim: resources not within those of the certificate that
	// should hold them (RFC 6487 section 7.2, RFC 9582 section 5).
	ErrOverclaim = errors.New("overclaim")
	// ErrLoop: a CA certificate repeats a key of its own chain.
	ErrLoop = errors.New("certificate loop")
	// ErrTooDeep: a chain longer than Config.MaxDepth.
	ErrTooDeep = errors.New("chain too deep")
)

// Validate validates the trees of tas at now and returns VRPs, ASPAs, the
// state of every CA, and every rejected object. Failures of single objects,
// CAs or trust anchors are in the Result; the error is non-nil only when
// ctx ends.
func (v *Validator) Validate(ctx context.Context, tas []TrustAnchor, now time.Time) (*Result, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	run := &run{v: v, ctx: ctx, now: now.UTC(), used: map[ppKey]*ppResult{}, objects: map[objKey]objectOutcome{}, repos: map[string]bool{}}
	res := &Result{Time: run.now}
	for _, ta := range tas {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		run.validateTA(ta, res)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Keep what this run used: the cache stays as big as one tree.
	v.cache, v.objects = run.used, run.objects
	for _, pp := range run.used {
		res.StableUntil = earliest(res.StableUntil, pp.window.until)
	}
	for _, t := range run.taUntil {
		res.StableUntil = earliest(res.StableUntil, t)
	}
	run.finish(res)
	return res, nil
}

// run is the state of one Validate call.
type run struct {
	v   *Validator
	ctx context.Context
	now time.Time

	mu      sync.Mutex
	used    map[ppKey]*ppResult
	objects map[objKey]objectOutcome
	repos   map[string]bool
	vrps    []VRPOutput
	aspas   []ASPAOutput
	// accepted are the publication points that validated.
	accepted []*ppResult
	// taUntil are the notAfter of the TA certificates used.
	taUntil []time.Time
}

// earliest returns the earlier of a and b, a zero time standing for no
// bound.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// caTask is a CA certificate to process, its resources resolved.
type caTask struct {
	ta     string
	uri    string
	cert   *Cert
	hash   [sha256.Size]byte
	parent *caTask
	depth  int
	// expires is the earliest notAfter of the chain down to cert.
	expires time.Time
}

// validateTA finds and checks the TA certificate of ta, then walks its
// tree level by level: every publication point of a level is processed in
// parallel, and the next level's CAs are sorted by URI and deduplicated,
// so that the result does not depend on scheduling.
func (r *run) validateTA(ta TrustAnchor, res *Result) {
	res.Stats.TALs++
	cert, uri, err := r.trustAnchorCert(ta)
	if err != nil {
		res.Stats.InvalidTALs++
		res.CAs = append(res.CAs, CAResult{TA: ta.Name, URI: firstURI(ta), Err: err})
		return
	}
	res.Stats.Certificates++
	r.taUntil = append(r.taUntil, cert.NotAfter)
	root := &caTask{ta: ta.Name, uri: uri, cert: cert, hash: sha256.Sum256(cert.Raw), depth: 1, expires: cert.NotAfter}
	r.addRepo(ta.Name, "ta:"+uri)
	level := []*caTask{root}
	seenSKI := map[string]string{string(cert.SKI): uri}
	seenMft := map[string]string{cert.Manifest: uri}
	total := 1
	for len(level) > 0 {
		if r.ctx.Err() != nil {
			return
		}
		pps := make([]*ppResult, len(level))
		parallel(len(level), r.v.cfg.Workers, func(i int) {
			pps[i] = r.processCA(level[i])
		})
		var next []*caTask
		for i, t := range level {
			next = append(next, r.merge(t, pps[i], res)...)
		}
		slices.SortStableFunc(next, func(a, b *caTask) int { return strings.Compare(a.uri, b.uri) })
		level = level[:0:0]
		for _, c := range next {
			if err := r.admit(c, seenSKI, seenMft, &total); err != nil {
				res.Stats.InvalidCertificates++
				res.CAs = append(res.CAs, CAResult{TA: c.ta, URI: c.uri, Subject: c.cert.SubjectCN, Manifest: c.cert.Manifest, Err: err})
				continue
			}
			res.Stats.Certificates++
			level = append(level, c)
		}
	}
}

// admit decides whether a CA certificate found in a valid publication
// point is processed: not a key of its own chain (a loop), not deeper than
// MaxDepth, and not a second certificate for a key or a manifest already
// reached (RFC 6487 wants unique SKIs; rpki-client keeps the first).
func (r *run) admit(c *caTask, seenSKI, seenMft map[string]string, total *int) error {
	for p := c.parent; p != nil; p = p.parent {
		if bytes.Equal(p.cert.SKI, c.cert.SKI) {
			return fmt.Errorf("%w: the key of %s is also that of its ancestor %s", ErrLoop, c.uri, p.uri)
		}
	}
	if c.depth > r.v.cfg.MaxDepth {
		return fmt.Errorf("%w: depth %d, max %d", ErrTooDeep, c.depth, r.v.cfg.MaxDepth)
	}
	if u, ok := seenSKI[string(c.cert.SKI)]; ok {
		return fmt.Errorf("duplicate SKI: %s has the key of %s", c.uri, u)
	}
	if u, ok := seenMft[c.cert.Manifest]; ok {
		return fmt.Errorf("duplicate manifest: %s names the manifest of %s", c.uri, u)
	}
	if *total >= r.v.cfg.MaxCAs {
		return fmt.Errorf("more than %d CA certificates below the TA", r.v.cfg.MaxCAs)
	}
	*total++
	seenSKI[string(c.cert.SKI)] = c.uri
	seenMft[c.cert.Manifest] = c.uri
	return nil
}

// trustAnchorCert returns the first TA certificate that holds the TAL's
// key and verifies at now: the caller's, then the Source's by the TAL's
// rsync URIs, then fetched from its https URIs.
func (r *run) trustAnchorCert(ta TrustAnchor) (*Cert, string, error) {
	if ta.TAL == nil {
		return nil, "", errors.New("trust anchor without TAL")
	}
	var errs []error
	try := func(der []byte, from string) *Cert {
		c, err := r.checkTA(ta.TAL, der)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", from, err))
			return nil
		}
		return c
	}
	if ta.Cert != nil {
		if c := try(ta.Cert, ta.CertFile); c != nil {
			return c, firstURI(ta), nil
		}
	}
	for _, u := range ta.TAL.URIs {
		if !strings.HasPrefix(strings.ToLower(u), "rsync://") {
			continue
		}
		der, err := r.v.cfg.Source.Object(u, r.v.cfg.MaxObjectSize)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c := try(der, u); c != nil {
			return c, u, nil
		}
	}
	for _, u := range ta.TAL.URIs {
		if !strings.HasPrefix(strings.ToLower(u), "https://") || r.v.cfg.FetchTA == nil {
			continue
		}
		der, err := r.v.cfg.FetchTA(r.ctx, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("fetch %s: %w", u, err))
			continue
		}
		if c := try(der, u); c != nil {
			return c, u, nil
		}
	}
	if len(errs) == 0 {
		return nil, "", errors.New("no TA certificate: none given, none in the tree, and no fetcher for https")
	}
	return nil, "", fmt.Errorf("no usable TA certificate: %w", errors.Join(errs...))
}

func (r *run) checkTA(tal *TrustAnchorLocator, der []byte) (*Cert, error) {
	if int64(len(der)) > r.v.cfg.MaxObjectSize {
		return nil, fmt.Errorf("%d bytes: %w", len(der), ErrTooLarge)
	}
	c, err := ParseCert(bytes.Clone(der)) // kept: see checkCert
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(c.RawSPKI, tal.SPKI) {
		return nil, errors.New("the certificate's key is not the TAL's")
	}
	if err := c.VerifyTA(r.now); err != nil {
		return nil, err
	}
	if _, _, err := c.Resources.IP.Canonical(); err != nil {
		return nil, err
	}
	return c, nil
}

func firstURI(ta TrustAnchor) string {
	if ta.TAL != nil && len(ta.TAL.URIs) > 0 {
		return ta.TAL.URIs[0]
	}
	return ta.Name
}

// addRepo counts a repository once per TA.
func (r *run) addRepo(ta, repo string) {
	r.mu.Lock()
	r.repos[ta+" "+repo] = true
	r.mu.Unlock()
}

// parallel calls f(0..n-1) on at most workers goroutines.
func parallel(n, workers int, f func(i int)) {
	if n <= 1 || workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
