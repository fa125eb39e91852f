package rpki

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ParseManifest parses the DER eContent of a manifest (RFC 9286): the
// version absent (only the default 0 exists), a manifest number of at most
// 20 octets, not negative, thisUpdate and nextUpdate as GeneralizedTime with
// thisUpdate before nextUpdate, fileHashAlg SHA-256, and a fileList of
// unique names of the RFC 9286 section 4.2.2 syntax with 32-octet hashes.
// Files keep their encoded order.
func ParseManifest(der []byte) (Manifest, error) {
	m, err := parseManifest(der)
	if err != nil {
		return Manifest{}, fmt.Errorf("parse manifest: %w", err)
	}
	return m, nil
}

func parseManifest(der []byte) (Manifest, error) {
	var m Manifest
	in := cryptobyte.String(der)
	var mft, files cryptobyte.String
	if !in.ReadASN1(&mft, cbasn1.SEQUENCE) || !in.Empty() {
		return m, errors.New("malformed Manifest")
	}
	if mft.PeekASN1Tag(tagExplicit0) || mft.PeekASN1Tag(tagImplicit0) {
		return m, errors.New("version present: only the default version 0 exists, and DER omits it")
	}
	m.Number = new(big.Int)
	if !mft.ReadASN1Integer(m.Number) {
		return m, errors.New("manifestNumber missing or malformed")
	}
	if m.Number.Sign() < 0 || m.Number.BitLen() > 159 {
		return m, fmt.Errorf("manifestNumber %s is negative or exceeds 20 octets", m.Number)
	}
	if !mft.PeekASN1Tag(cbasn1.GeneralizedTime) || !mft.ReadASN1GeneralizedTime(&m.ThisUpdate) {
		return m, errors.New("thisUpdate missing or not a GeneralizedTime")
	}
	if !mft.PeekASN1Tag(cbasn1.GeneralizedTime) || !mft.ReadASN1GeneralizedTime(&m.NextUpdate) {
		return m, errors.New("nextUpdate missing or not a GeneralizedTime")
	}
	if !m.ThisUpdate.Before(m.NextUpdate) {
		return m, fmt.Errorf("thisUpdate %s is not before nextUpdate %s", m.ThisUpdate.Format(time.RFC3339), m.NextUpdate.Format(time.RFC3339))
	}
	var alg asn1.ObjectIdentifier
	if !mft.ReadASN1ObjectIdentifier(&alg) {
		return m, errors.New("fileHashAlg missing or malformed")
	}
	if !alg.Equal(oidSHA256) {
		return m, fmt.Errorf("fileHashAlg %v, want SHA-256", alg)
	}
	if !mft.ReadASN1(&files, cbasn1.SEQUENCE) || !mft.Empty() {
		return m, errors.New("fileList missing, malformed or followed by trailing data")
	}
	seen := map[string]bool{}
	for i := 0; !files.Empty(); i++ {
		var fh, name cryptobyte.String
		var hash asn1.BitString
		if !files.ReadASN1(&fh, cbasn1.SEQUENCE) || !fh.ReadASN1(&name, cbasn1.IA5String) ||
			!fh.ReadASN1BitString(&hash) || !fh.Empty() {
			return m, fmt.Errorf("file %d: malformed FileAndHash", i)
		}
		if !validFileName(string(name)) {
			return m, fmt.Errorf("file %d: invalid file name %q", i, name)
		}
		if seen[string(name)] {
			return m, fmt.Errorf("file %d: duplicate file name %q", i, name)
		}
		seen[string(name)] = true
		if hash.BitLength != 8*sha256.Size {
			return m, fmt.Errorf("file %q: hash of %d bits, want 256", name, hash.BitLength)
		}
		f := FileHash{Name: string(name)}
		copy(f.Hash[:], hash.Bytes)
		m.Files = append(m.Files, f)
	}
	return m, nil
}
