package repotest

import (
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// object is a published object: its rsync URI, DER and SHA-256.
type object struct {
	uri  string
	der  []byte
	hash [sha256.Size]byte
}

// builder turns the state into objects.
type builder struct {
	s       *state
	keys    *keyStore
	pool    []*rsa.PrivateKey // EE keys, shared by the signed objects
	workers int
}

// work is what to rebuild in one publication point: everything (all), or
// the named files; the CRL and the manifest are always rebuilt.
type work struct {
	ca    *caState
	all   bool
	names map[string]bool
}

// item is one file of a publication point other than its manifest.
type item struct {
	name  string
	build func() ([]byte, error) // nil: unchanged
}

// issuerCertURI is the rsync URI of ca's own certificate.
func (s *state) issuerCertURI(ca *caState) string {
	if ca.Parent < 0 {
		return s.taCertURI()
	}
	return s.dir(s.CAs[ca.Parent]) + ca.certName()
}

// caKey returns the key of ca.
func (b *builder) caKey(ca *caState) (*rsa.PrivateKey, error) {
	return b.keys.get(caKeyLabel(ca.ID), ca.All)
}

// issuer returns ca as an issuer. Its name is its handle, so it needs
// neither its certificate nor the parse of it.
func (b *builder) issuer(ca *caState) (rpki.Issuer, error) {
	key, err := b.caKey(ca)
	if err != nil {
		return rpki.Issuer{}, err
	}
	name, err := encodeName(ca.handle())
	if err != nil {
		return rpki.Issuer{}, err
	}
	return rpki.Issuer{Name: name, KeyID: rpki.KeyID(&key.PublicKey), Key: key}, nil
}

// encodeName returns the DER Name of a certificate whose subject is only a
// PrintableString CommonName, the RFC 6487 profile that rpki.IssueCert
// writes.
func encodeName(cn string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier([]int{2, 5, 4, 3})
				b.AddASN1(cbasn1.PrintableString, func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(cn))
				})
			})
		})
	})
	return b.Bytes()
}

// taCert returns the TA certificate.
func (b *builder) taCert() ([]byte, error) {
	ta := b.s.CAs[0]
	key, err := b.caKey(ta)
	if err != nil {
		return nil, err
	}
	der, err := rpki.IssueTA(rpki.CertSpec{
		Serial: bigU(ta.Cert.Serial), Subject: ta.handle(),
		NotBefore: fromUnix(ta.Cert.NotBefore), NotAfter: fromUnix(ta.Cert.NotAfter),
		CA: true, Resources: ta.resources(),
		CARepository: b.s.dir(ta), Manifest: b.s.dir(ta) + ta.mftName(), Notify: b.s.notifyURI(ta),
	}, key)
	if err != nil {
		return nil, fmt.Errorf("issue TA certificate: %w", err)
	}
	return der, nil
}

// point builds the changed objects of one publication point and its new
// CRL and manifest, sorted by URI. hashOf gives the hash of an unchanged
// file.
func (b *builder) point(w work, hashOf func(uri string) ([sha256.Size]byte, bool)) ([]object, error) {
	ca := w.ca
	dir := b.s.dir(ca)
	iss, err := b.issuer(ca)
	if err != nil {
		return nil, fmt.Errorf("publication point %s: %w", dir, err)
	}
	items := b.items(ca, iss)
	var todo []int
	for i, it := range items {
		if !w.all && !w.names[it.name] && it.name != ca.crlName() {
			items[i].build = nil
			continue
		}
		todo = append(todo, i)
	}
	objs := make([]object, len(items))
	workers := 1
	if len(todo) > 16 {
		workers = b.workers
	}
	err = parallelFor(len(todo), workers, func(j int) error {
		it := items[todo[j]]
		der, err := it.build()
		if err != nil {
			return fmt.Errorf("build %s%s: %w", dir, it.name, err)
		}
		objs[todo[j]] = object{uri: dir + it.name, der: der, hash: sha256.Sum256(der)}
		return nil
	})
	if err != nil {
		return nil, err
	}

	m := rpki.Manifest{Number: bigU(ca.Number), ThisUpdate: fromUnix(ca.ThisUpdate), NextUpdate: fromUnix(ca.NextUpdate)}
	out := make([]object, 0, len(todo)+1)
	for i, it := range items {
		h := objs[i].hash
		if it.build == nil {
			var ok bool
			if h, ok = hashOf(dir + it.name); !ok {
				return nil, fmt.Errorf("manifest of %s: unchanged file %s is not in the repository", dir, it.name)
			}
		} else {
			out = append(out, objs[i])
		}
		m.Files = append(m.Files, rpki.FileHash{Name: it.name, Hash: h})
	}
	content, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", dir, err)
	}
	mft, err := b.signed(ca, iss, ca.mftName(), rpki.OIDContentManifest, content,
		eeState{Serial: ca.MftEE, NotBefore: ca.ThisUpdate, NotAfter: ca.NextUpdate}, ca.resources().Inherited())
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", dir, err)
	}
	out = append(out, object{uri: dir + ca.mftName(), der: mft, hash: sha256.Sum256(mft)})
	slices.SortFunc(out, func(a, b object) int { return strings.Compare(a.uri, b.uri) })
	return out, nil
}

// items lists the files of ca's publication point, manifest excepted.
func (b *builder) items(ca *caState, iss rpki.Issuer) []item {
	s := b.s
	var items []item
	for _, id := range ca.Children {
		child := s.CAs[id]
		items = append(items, item{child.certName(), func() ([]byte, error) {
			key, err := b.caKey(child)
			if err != nil {
				return nil, err
			}
			return rpki.IssueCert(rpki.CertSpec{
				Serial: bigU(child.Cert.Serial), Subject: child.handle(),
				NotBefore: fromUnix(child.Cert.NotBefore), NotAfter: fromUnix(child.Cert.NotAfter),
				PublicKey: &key.PublicKey, CA: true, Resources: child.resources(),
				CRL: s.dir(ca) + ca.crlName(), IssuerCert: s.issuerCertURI(ca),
				CARepository: s.dir(child), Manifest: s.dir(child) + child.mftName(), Notify: s.notifyURI(child),
			}, iss)
		}})
	}
	for _, r := range ca.ROAs {
		items = append(items, item{roaName(r.Slot), func() ([]byte, error) {
			roa := s.roa(ca, r)
			content, err := roa.Marshal()
			if err != nil {
				return nil, err
			}
			return b.signed(ca, iss, roaName(r.Slot), rpki.OIDContentROA, content, r.eeState, roa.Resources())
		}})
	}
	if ca.ASPA != nil {
		ee := ca.ASPA.eeState
		items = append(items, item{ca.aspaName(), func() ([]byte, error) {
			aspa := s.aspa(ca)
			content, err := aspa.Marshal()
			if err != nil {
				return nil, err
			}
			return b.signed(ca, iss, ca.aspaName(), rpki.OIDContentASPA, content, ee, aspa.Resources())
		}})
	}
	items = append(items, item{ca.crlName(), func() ([]byte, error) {
		spec := rpki.CRLSpec{Number: bigU(ca.Number), ThisUpdate: fromUnix(ca.ThisUpdate), NextUpdate: fromUnix(ca.NextUpdate)}
		for _, r := range ca.Revoked {
			spec.Revoked = append(spec.Revoked, rpki.Revoked{Serial: bigU(r.Serial), Time: fromUnix(r.Time)})
		}
		return rpki.IssueCRL(spec, iss)
	}})
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.name, b.name) })
	return items
}

// signed returns a signed object of ca: an EE certificate with a key of
// the pool, and the CMS signature with that key.
func (b *builder) signed(ca *caState, iss rpki.Issuer, name string, ct []int, content []byte, ee eeState, res rpki.Resources) ([]byte, error) {
	key := b.pool[ee.Serial%uint64(len(b.pool))]
	uri := b.s.dir(ca) + name
	cert, err := rpki.IssueCert(rpki.CertSpec{
		Serial: bigU(ee.Serial), Subject: fmt.Sprintf("%s-ee-%d", ca.handle(), ee.Serial),
		NotBefore: fromUnix(ee.NotBefore), NotAfter: fromUnix(ee.NotAfter),
		PublicKey: &key.PublicKey, Resources: res,
		CRL: b.s.dir(ca) + ca.crlName(), IssuerCert: b.s.issuerCertURI(ca), SignedObject: uri,
	}, iss)
	if err != nil {
		return nil, fmt.Errorf("EE certificate: %w", err)
	}
	return rpki.SignObject(ct, content, cert, key, fromUnix(ee.NotBefore))
}
