package rpki

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"path"
	"strings"
	"time"
)

// ppKey is what the result of a publication point depends on: the CA
// certificate, its resources as resolved along the chain (an inheriting
// certificate's change when an ancestor's do), and the manifest. The files
// the manifest lists are pinned by their hashes in it; the time by
// ppResult.window.
type ppKey struct {
	ca, res, mft [sha256.Size]byte
}

// ppResult is the outcome of one publication point, reusable while its
// key, its files and the time window hold.
type ppResult struct {
	key    ppKey
	mftURI string
	number *big.Int
	// dir and files are the manifest's directory and entries, to check
	// the files again when the result is reused.
	dir   string
	files []FileHash
	// crlNext is the CRL's nextUpdate, which bounds every VRP's expiry.
	crlNext time.Time
	crlURI  string
	// valid lists the ROAs and ASPAs that validated, for Point.
	valid    []string
	vrps     []VRPOutput // TA and Expires (EE notAfter) not yet chained
	aspas    []ASPAOutput
	children []*caTask // parent, depth, expires and ta filled in by merge
	problems []*ObjectError
	stats    Stats
	window   window
	// err fails the whole publication point.
	err error
	// reused marks a result taken from an earlier run, unchanged or in
	// place of a manifest that broke the number rule.
	reused bool
	// memo holds the memo keys of the point's objects: their outcomes
	// are carried over from the last run's memo to the next's when the
	// result is reused.
	memo []objKey
}

// window is the time range in which every validity check of a result
// comes out the same; zero bounds are open.
type window struct {
	from, until time.Time
}

// narrow restricts w by a check that passes within [lo, hi], given that
// it was made at now.
func (w *window) narrow(lo, hi, now time.Time) {
	switch {
	case now.Before(lo):
		w.setUntil(lo.Add(-time.Nanosecond))
	case now.After(hi):
		w.setFrom(hi.Add(time.Nanosecond))
	default:
		w.setFrom(lo)
		w.setUntil(hi)
	}
}

func (w *window) setFrom(t time.Time) {
	if w.from.IsZero() || t.After(w.from) {
		w.from = t
	}
}

func (w *window) setUntil(t time.Time) {
	if w.until.IsZero() || t.Before(w.until) {
		w.until = t
	}
}

func (w *window) join(o window) {
	if !o.from.IsZero() {
		w.setFrom(o.from)
	}
	if !o.until.IsZero() {
		w.setUntil(o.until)
	}
}

func (w window) contains(t time.Time) bool {
	return (w.from.IsZero() || !t.Before(w.from)) && (w.until.IsZero() || !t.After(w.until))
}

// resourcesHash fingerprints resolved resources.
func resourcesHash(r Resources) [sha256.Size]byte {
	var b strings.Builder
	for _, x := range mergeIP(r.IP.Ranges) {
		b.WriteString(x.Min.String() + "-" + x.Max.String() + ",")
	}
	as, _ := ASResources{Ranges: r.AS.Ranges}.Canonical()
	for _, x := range as {
		fmt.Fprintf(&b, "AS%d-%d,", x.Min, x.Max)
	}
	return sha256.Sum256([]byte(b.String()))
}

// processCA validates the publication point of t, or reuses the result of
// an earlier run.
func (r *run) processCA(t *caTask) *ppResult {
	ca := t.cert
	mftURI := ca.Manifest
	fail := func(pp *ppResult, err error) *ppResult {
		pp.err = err
		pp.stats.FailedManifests++
		if errors.Is(err, ErrStale) {
			pp.stats.StaleManifests++
		}
		return pp
	}
	if err := r.ctx.Err(); err != nil {
		return fail(&ppResult{mftURI: mftURI}, err)
	}
	if !strings.HasPrefix(mftURI, strings.TrimSuffix(ca.CARepository, "/")+"/") {
		return fail(&ppResult{mftURI: mftURI}, fmt.Errorf("manifest %s is not within the CA repository %s", mftURI, ca.CARepository))
	}
	der, err := r.v.cfg.Source.Object(mftURI, r.v.cfg.MaxObjectSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("manifest %s is missing", mftURI)
		}
		return fail(&ppResult{mftURI: mftURI}, err)
	}
	key := ppKey{ca: t.hash, res: resourcesHash(ca.Resources), mft: sha256.Sum256(der)}
	if old, ok := r.v.cache[key]; ok && old.window.contains(r.now) && r.filesUnchanged(old) == nil {
		reused := *old
		reused.reused = true
		r.keepMemo(old)
		return &reused
	}
	so, m, err := parseManifestObject(der)
	// RFC 9286 section 4.2.1: a new manifest must have a higher number;
	// otherwise the previous one's result stands while it is current
	// (whatever the state of the files the older manifest lists).
	if prev, ok := r.v.numbers[mftURI]; ok && err == nil && prev.key.mft != key.mft && m.Number.Cmp(prev.number) <= 0 {
		err := fmt.Errorf("manifest %s: number %s is not above %s, that of the manifest accepted before", mftURI, m.Number, prev.number)
		if prev.key.ca == key.ca && prev.key.res == key.res && prev.window.contains(r.now) {
			kept := *prev
			kept.reused = true
			r.keepMemo(prev)
			kept.problems = append(append([]*ObjectError(nil), prev.problems...), &ObjectError{URI: mftURI, CA: t.uri, Err: fmt.Errorf("%w: keeping the previous manifest", err)})
			return &kept
		}
		return fail(&ppResult{mftURI: mftURI, key: key}, err)
	}
	pp := r.checkPP(t, key, so, m, err)
	pp.key = key
	if pp.err != nil {
		return fail(pp, pp.err)
	}
	return pp
}

// keepMemo carries the object outcomes of a reused result over from the
// last run's memo to this run's. A result older than the last run (a
// manifest kept by the number rule while its CA was away) may find some
// gone: those objects are checked again when their point next changes.
func (r *run) keepMemo(pp *ppResult) {
	r.mu.Lock()
	for _, k := range pp.memo {
		if o, ok := r.v.objects[k]; ok {
			r.objects[k] = o
		}
	}
	r.mu.Unlock()
}

// filesUnchanged checks that the files of a reusable result still have
// the hashes its manifest lists.
func (r *run) filesUnchanged(pp *ppResult) error {
	h, isHasher := r.v.cfg.Source.(Hasher)
	for _, f := range pp.files {
		uri := pp.dir + f.Name
		var sum [sha256.Size]byte
		if isHasher {
			s, err := h.ObjectHash(uri)
			if err != nil {
				return err
			}
			sum = s
		} else {
			b, err := r.v.cfg.Source.Object(uri, r.v.cfg.MaxObjectSize)
			if err != nil {
				return err
			}
			sum = sha256.Sum256(b)
		}
		if sum != f.Hash {
			return fmt.Errorf("%s changed", uri)
		}
	}
	return nil
}

// maxListed bounds the files named in one error.
const maxListed = 8

// checkPP validates the publication point of t from its manifest (so and
// m, or the error parsing it): the manifest (current, RFC 9286), its one
// CRL, every listed file present with its hash, then every object.
func (r *run) checkPP(t *caTask, key ppKey, so *SignedObject, m Manifest, err error) *ppResult {
	ca, now := t.cert, r.now
	pp := &ppResult{mftURI: ca.Manifest}
	pp.window.narrow(ca.NotBefore, ca.NotAfter, now)
	if err == nil {
		pp.window.narrow(m.ThisUpdate, m.NextUpdate, now)
		pp.window.narrow(so.EE.NotBefore, so.EE.NotAfter, now)
		err = checkManifestTime(m, now)
	}
	if err == nil && len(m.Files) > r.v.cfg.MaxManifestFiles {
		err = fmt.Errorf("%d files, more than %d", len(m.Files), r.v.cfg.MaxManifestFiles)
	}
	if err != nil {
		pp.err = fmt.Errorf("manifest %s: %w", pp.mftURI, err)
		return pp
	}
	pp.number, pp.files = m.Number, m.Files
	pp.dir = pp.mftURI[:strings.LastIndexByte(pp.mftURI, '/')+1]

	crlIdx := -1
	for i, f := range m.Files {
		if strings.HasSuffix(strings.ToLower(f.Name), ".crl") {
			if crlIdx >= 0 {
				pp.err = fmt.Errorf("manifest %s: lists two CRLs, %s and %s", pp.mftURI, m.Files[crlIdx].Name, f.Name)
				return pp
			}
			crlIdx = i
		}
	}
	if crlIdx < 0 {
		pp.err = fmt.Errorf("manifest %s: lists no CRL", pp.mftURI)
		return pp
	}
	crlURI := pp.dir + m.Files[crlIdx].Name
	if so.EE.CRL != crlURI {
		pp.err = fmt.Errorf("manifest %s: its EE certificate names the CRL %s, not the listed %s", pp.mftURI, so.EE.CRL, crlURI)
		return pp
	}

	data := make([][]byte, len(m.Files))
	var bad []string
	for i, f := range m.Files {
		b, err := r.v.cfg.Source.Object(pp.dir+f.Name, r.v.cfg.MaxObjectSize)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			bad = append(bad, f.Name+" is missing")
		case err != nil:
			bad = append(bad, err.Error())
		case sha256.Sum256(b) != f.Hash:
			bad = append(bad, f.Name+" does not match its hash")
		}
		data[i] = b
	}
	if len(bad) > 0 {
		more := ""
		if len(bad) > maxListed {
			more = fmt.Sprintf(" (and %d more)", len(bad)-maxListed)
			bad = bad[:maxListed]
		}
		pp.err = fmt.Errorf("manifest %s: %s%s", pp.mftURI, strings.Join(bad, "; "), more)
		return pp
	}

	crl, err := checkCRL(ca, data[crlIdx], now, &pp.window)
	if err != nil {
		pp.err = fmt.Errorf("CRL %s: %w", crlURI, err)
		return pp
	}
	pp.stats.CRLs++
	pp.crlNext, pp.crlURI = crl.NextUpdate, crlURI
	ic := &issuerContext{ca: ca, crlURI: crlURI, revoked: revocationSet(crl), now: now, key: issuerKey(key, crlURI)}
	if _, err := so.verifyIssued(ca, ic.revoked, now); err != nil {
		pp.err = fmt.Errorf("manifest %s: %w", pp.mftURI, err)
		return pp
	}
	pp.stats.Manifests++

	outs := make([]objectOutcome, len(m.Files))
	memo := make([]objKey, len(m.Files))
	workers := 1
	if len(m.Files) >= 64 {
		workers = r.v.cfg.Workers
	}
	parallel(len(m.Files), workers, func(i int) {
		if i != crlIdx {
			outs[i], memo[i] = r.checkObject(ic, pp.dir+m.Files[i].Name, data[i])
		}
		data[i] = nil
	})
	// Sized once: the memo and the VRPs outlive the run, and appending
	// would leave them up to twice their size.
	nvrps := 0
	for _, o := range outs {
		nvrps += len(o.vrps)
	}
	pp.memo = make([]objKey, 0, len(m.Files)-1)
	pp.vrps = make([]VRPOutput, 0, nvrps)
	for i, o := range outs {
		if i == crlIdx {
			continue
		}
		pp.memo = append(pp.memo, memo[i])
		pp.add(t, pp.dir+m.Files[i].Name, o)
	}
	return pp
}

// parseManifestObject parses a manifest: the signed object, its content
// type and its content.
func parseManifestObject(der []byte) (*SignedObject, Manifest, error) {
	so, err := ParseSignedObject(der)
	if err != nil {
		return nil, Manifest{}, err
	}
	if !so.ContentType.Equal(OIDContentManifest) {
		return nil, Manifest{}, fmt.Errorf("content type %v is not a manifest's", so.ContentType)
	}
	m, err := ParseManifest(so.Content)
	if err != nil {
		return nil, Manifest{}, err
	}
	return so, m, nil
}

// checkManifestTime checks that m is current at now: a manifest past its
// nextUpdate is stale and fails its publication point (RFC 9286 section
// 6.3, as rpki-client 8.2 does).
func checkManifestTime(m Manifest, now time.Time) error {
	switch {
	case now.After(m.NextUpdate):
		return fmt.Errorf("%w: nextUpdate %s has passed", ErrStale, m.NextUpdate.Format(time.RFC3339))
	case now.Before(m.ThisUpdate):
		return fmt.Errorf("thisUpdate %s is in the future", m.ThisUpdate.Format(time.RFC3339))
	}
	return nil
}

// checkCRL parses and verifies the CRL of ca's publication point at now;
// w, if not nil, is narrowed by its validity.
func checkCRL(ca *Cert, der []byte, now time.Time, w *window) (*CRL, error) {
	crl, err := ParseCRL(der)
	if err != nil {
		return nil, err
	}
	if w != nil {
		w.narrow(crl.ThisUpdate, crl.NextUpdate, now)
	}
	if err := crl.Verify(ca, now); err != nil {
		if now.After(crl.NextUpdate) {
			return nil, fmt.Errorf("%w: %w", ErrStale, err)
		}
		return nil, err
	}
	return crl, nil
}

// add records the outcome of one object.
func (pp *ppResult) add(t *caTask, uri string, o objectOutcome) {
	pp.window.join(o.window)
	if o.err != nil {
		pp.problems = append(pp.problems, &ObjectError{URI: uri, CA: t.uri, Err: o.err})
	}
	invalid := errors.Is(o.err, ErrOverclaim)
	switch o.kind {
	case kindCert:
		if o.err != nil {
			pp.stats.InvalidCertificates++
			return
		}
		pp.children = append(pp.children, &caTask{uri: uri, cert: o.cert, hash: sha256.Sum256(o.cert.Raw)})
	case kindROA:
		switch {
		case invalid:
			pp.stats.InvalidROAs++
		case o.err != nil:
			pp.stats.FailedROAs++
		default:
			pp.stats.ROAs++
			pp.vrps = append(pp.vrps, o.vrps...)
			pp.valid = append(pp.valid, uri)
		}
	case kindASPA:
		switch {
		case invalid:
			pp.stats.InvalidASPAs++
		case o.err != nil:
			pp.stats.FailedASPAs++
		default:
			pp.stats.ASPAs++
			pp.aspas = append(pp.aspas, *o.aspa)
			pp.valid = append(pp.valid, uri)
		}
	case kindGBR:
		if o.err == nil {
			pp.stats.GBRs++
		}
	}
}

// revocationSet returns the revocation test of a verified CRL.
func revocationSet(crl *CRL) func(*big.Int) bool {
	set := make(map[string]bool, len(crl.Revoked))
	for _, e := range crl.Revoked {
		set[string(e.Serial.Bytes())] = true
	}
	return func(s *big.Int) bool { return set[string(s.Bytes())] }
}

// merge adds the result of t's publication point to res and returns the
// CAs it issued. It runs for one point at a time, in a fixed order.
func (r *run) merge(t *caTask, pp *ppResult, res *Result) []*caTask {
	car := CAResult{TA: t.ta, URI: t.uri, Subject: t.cert.SubjectCN, Manifest: t.cert.Manifest, Err: pp.err, Reused: pp.reused}
	addStats(&res.Stats, pp.stats)
	for _, p := range pp.problems {
		p := *p
		p.CA = t.uri
		res.Problems = append(res.Problems, &p)
	}
	if pp.err != nil {
		res.CAs = append(res.CAs, car)
		return nil
	}
	if pp.reused {
		res.Stats.ReusedPoints++
	} else {
		res.Stats.RevalidatedPoints++
	}
	r.used[pp.key] = pp
	r.accepted = append(r.accepted, pp)
	r.addRepo(t.ta, repository(t.cert))
	car.ManifestNumber = pp.number.String()
	car.VRPs, car.ASPAs, car.Rejected = len(pp.vrps), len(pp.aspas), len(pp.problems)
	res.CAs = append(res.CAs, car)
	if r.v.cfg.KeepPoints {
		res.Points = append(res.Points, t.point(pp))
	}
	chain := t.expires
	if pp.crlNext.Before(chain) {
		chain = pp.crlNext
	}
	for _, v := range pp.vrps {
		v.TA = t.ta
		if chain.Before(v.Expires) {
			v.Expires = chain
		}
		r.vrps = append(r.vrps, v)
	}
	for _, a := range pp.aspas {
		a.TA = t.ta
		if chain.Before(a.Expires) {
			a.Expires = chain
		}
		r.aspas = append(r.aspas, a)
	}
	for _, p := range pp.problems {
		if strings.HasSuffix(strings.ToLower(p.URI), ".cer") {
			res.CAs = append(res.CAs, CAResult{TA: t.ta, URI: p.URI, Err: p.Err})
		}
	}
	next := make([]*caTask, 0, len(pp.children))
	for _, c := range pp.children {
		// rpki-client 8.2 bounds an object's expiry by the notAfter of
		// every certificate of its chain but by its issuer's CRL only
		// (the Krill oracle shows it): the CRLs above do not count.
		exp := t.expires
		if c.cert.NotAfter.Before(exp) {
			exp = c.cert.NotAfter
		}
		next = append(next, &caTask{ta: t.ta, uri: c.uri, cert: c.cert, hash: c.hash, parent: t, depth: t.depth + 1, expires: exp})
	}
	return next
}

// repository names the repository of a CA: its RRDP notification URI, or
// else its rsync host and module.
func repository(c *Cert) string {
	if c.Notify != "" {
		return c.Notify
	}
	u, err := url.Parse(c.CARepository)
	if err != nil {
		return c.CARepository
	}
	mod, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	return "rsync://" + u.Host + "/" + path.Clean(mod)
}

func addStats(s *Stats, o Stats) {
	s.ROAs += o.ROAs
	s.FailedROAs += o.FailedROAs
	s.InvalidROAs += o.InvalidROAs
	s.ASPAs += o.ASPAs
	s.FailedASPAs += o.FailedASPAs
	s.InvalidASPAs += o.InvalidASPAs
	s.Certificates += o.Certificates
	s.InvalidCertificates += o.InvalidCertificates
	s.Manifests += o.Manifests
	s.FailedManifests += o.FailedManifests
	s.StaleManifests += o.StaleManifests
	s.CRLs += o.CRLs
	s.GBRs += o.GBRs
}
