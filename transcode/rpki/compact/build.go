package compact

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// iMFTLabel and notificationLabel separate the signatures of the two
// signed messages.
const (
	iMFTLabel         = "rrdp-proxy compact iMFT v1"
	notificationLabel = "rrdp-proxy compact notification v1"
)

// Build returns the compact groups of the publication points of res (a
// Validate run with Config.KeepPoints over src), signed by s, sorted by
// URI: per CA its certificate, its iROAs and compact ASPAs, and its iMFT.
// Only what validated is emitted: a point that failed has no Point, an
// object that failed is not in Point.Objects. The bytes depend only on
// src, res and the keys. The CA certificates are kept (see
// Builder.OmitCertificates).
func Build(ctx context.Context, src rpki.Source, res *rpki.Result, s *Signer) ([]*irpkipb.CompactCA, error) {
	return new(Builder).Build(ctx, src, res, s)
}

// Builder is Build with a memory: the compact form of each object, by name
// and content, is kept from one Build to the next, so that a long-lived
// Builder parses only the objects that changed. The zero value is ready.
// A Builder is not safe for concurrent use.
type Builder struct {
	// OmitCertificates, if set, leaves out the CA certificates below the
	// trust anchors: each group carries instead a CA record in its signed
	// iMFT (the CA's resources as the validator resolved them, and its
	// validity), so that the chain from the trust anchor is the proxy's
	// word, not checked end to end by clients. The default keeps every
	// certificate.
	OmitCertificates bool

	last, used map[entryKey]*irpkipb.SnapshotEntry
}

type entryKey struct {
	name string
	hash [sha256.Size]byte
}

// Build is Build, reusing the entries of the previous call.
func (b *Builder) Build(ctx context.Context, src rpki.Source, res *rpki.Result, s *Signer) ([]*irpkipb.CompactCA, error) {
	return b.BuildSome(ctx, src, res, s, nil)
}

// BuildSome is Build for the points of res that some reports true for
// (nil: all), as a caller that keeps the groups of the others does. A
// group depends on the other points of res (a lean CA record names its
// rpkiNotify only when it differs from its issuer's), so res must be the
// whole result. Only the entries of the groups built are kept for the
// next call.
func (b *Builder) BuildSome(ctx context.Context, src rpki.Source, res *rpki.Result, s *Signer, some func(*rpki.Point) bool) ([]*irpkipb.CompactCA, error) {
	b.used = map[entryKey]*irpkipb.SnapshotEntry{}
	defer func() { b.last, b.used = b.used, nil }()
	out := make([]*irpkipb.CompactCA, 0, len(res.Points))
	notify := make(map[string]string, len(res.Points))
	for i := range res.Points {
		notify[res.Points[i].URI] = res.Points[i].CA.Notify
	}
	seen := map[string]bool{}
	for i := range res.Points {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := &res.Points[i]
		if seen[p.URI] {
			continue // a TA reached twice under one name: rpki-client keeps one
		}
		seen[p.URI] = true
		if some != nil && !some(p) {
			continue
		}
		g, err := b.group(src, p, notify, s)
		if err != nil {
			return nil, fmt.Errorf("compact: CA %s: %w", p.URI, err)
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *irpkipb.CompactCA) int { return strings.Compare(a.Uri, b.Uri) })
	return out, nil
}

// maxObject caps one object read from the source, as the validator does.
const maxObject = 4 << 20

// group returns the compact group of p; notify gives the rpkiNotify of
// every point's CA by URI.
func (b *Builder) group(src rpki.Source, p *rpki.Point, notify map[string]string, s *Signer) (*irpkipb.CompactCA, error) {
	mftDER, err := src.Object(p.Manifest, maxObject)
	if err != nil {
		return nil, err
	}
	so, err := rpki.ParseSignedObject(mftDER)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p.Manifest, err)
	}
	m, err := rpki.ParseManifest(so.Content)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p.Manifest, err)
	}
	crlDER, err := src.Object(p.CRL, maxObject)
	if err != nil {
		return nil, err
	}
	crl, err := rpki.ParseCRL(crlDER)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", p.CRL, err)
	}
	g := &irpkipb.CompactCA{Repo: p.CA.CARepository, Uri: p.URI, Certificate: p.CA.Raw, Parent: p.Parent, Ta: p.TA}
	for _, uri := range p.Objects {
		e, err := b.entry(src, uri)
		if err != nil {
			return nil, err
		}
		g.Entries = append(g.Entries, e)
	}
	slices.SortFunc(g.Entries, func(a, b *irpkipb.SnapshotEntry) int { return strings.Compare(a.Name, b.Name) })
	g.Entries = slices.CompactFunc(g.Entries, func(a, b *irpkipb.SnapshotEntry) bool { return a.Name == b.Name })

	content := &irpkipb.ManifestContent{
		Hashes:        &irpkipb.ManifestHashes{HashAlgorithm: HashAlgorithm},
		CrlThisUpdate: timestamp(crl.ThisUpdate), CrlNextUpdate: timestamp(crl.NextUpdate),
	}
	for _, e := range g.Entries {
		h := sha256.Sum256(e.Content)
		content.Hashes.HashList = append(content.Hashes.HashList, &irpkipb.ManifestHash{FileName: e.Name, Hash: h[:]})
	}
	for _, r := range crl.Revoked {
		rc := &irpkipb.RevokedCert{RevocationTime: timestamp(r.Time)}
		setSerial(r.Serial, &rc.Serial, &rc.BigSerial)
		content.RevocedCerts = append(content.RevocedCerts, rc)
	}
	meta := &irpkipb.Meta{Oid: oidManifest, NotBefore: timestamp(m.ThisUpdate), NotAfter: timestamp(m.NextUpdate), Ski: p.CA.SKI}
	setSerial(m.Number, &meta.Serial, &meta.BigSerial)
	g.Manifest = &irpkipb.Manifest{ManifestContent: content, Meta: meta}
	if b.OmitCertificates && p.Parent != "" {
		if g.Manifest.Ca, err = newCARecord(p.CA, notify[p.Parent]); err != nil {
			return nil, err
		}
		g.Certificate = nil
	}
	g.Manifest.Signature, g.Manifest.MoreSignatures = s.sign(iMFTLabel, marshal(g.Manifest))
	return g, nil
}

// entry returns the compact form of the validated ROA or ASPA at uri.
func (b *Builder) entry(src rpki.Source, uri string) (*irpkipb.SnapshotEntry, error) {
	der, err := src.Object(uri, maxObject)
	if err != nil {
		return nil, err
	}
	k := entryKey{path.Base(uri), sha256.Sum256(der)}
	if e, ok := b.last[k]; ok {
		b.used[k] = e
		return e, nil
	}
	e, err := buildEntry(uri, der)
	if err != nil {
		return nil, err
	}
	b.used[k] = e
	return e, nil
}

// buildEntry returns the compact form of a validated ROA or ASPA.
func buildEntry(uri string, der []byte) (*irpkipb.SnapshotEntry, error) {
	so, err := rpki.ParseSignedObject(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	name := path.Base(uri)
	switch strings.ToLower(path.Ext(name)) {
	case ".roa":
		r, err := rpki.ParseROA(so.Content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", uri, err)
		}
		return &irpkipb.SnapshotEntry{Name: name, Content: marshal(newROA(r, so.EE))}, nil
	case ".asa":
		a, err := rpki.ParseASPA(so.Content)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", uri, err)
		}
		return &irpkipb.SnapshotEntry{Name: name, Content: marshal(newASPA(a, so.EE))}, nil
	}
	return nil, fmt.Errorf("%s: neither a ROA nor an ASPA", uri)
}
