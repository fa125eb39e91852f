package rpki

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Manifest is the content of an RPKI manifest (RFC 9286), eContentType
// OIDContentManifest.
type Manifest struct {
	// Number is the manifest number, non-negative, at most 20 octets.
	Number *big.Int
	// ThisUpdate and NextUpdate are encoded as GeneralizedTime, truncated
	// to the second. RFC 9286 section 5.1 wants the EE certificate's
	// validity to match them.
	ThisUpdate, NextUpdate time.Time
	// Files lists the objects of the publication point, in any order;
	// they are encoded sorted by name.
	Files []FileHash
}

// FileHash is one entry of a manifest: a file name without directory and
// the SHA-256 of its content.
type FileHash struct {
	Name string
	Hash [sha256.Size]byte
}

// NewFileHash returns the FileHash of a file's name and content.
func NewFileHash(name string, content []byte) FileHash {
	return FileHash{Name: name, Hash: sha256.Sum256(content)}
}

// Marshal returns the DER Manifest: version omitted (0), fileHashAlg
// SHA-256, fileList sorted by name. Names must be unique and made of the
// characters RFC 9286 section 4.2.2 allows: letters, digits, '-', '_' and
// one '.' before a three-letter extension.
func (m Manifest) Marshal() ([]byte, error) {
	if m.Number == nil || m.Number.Sign() < 0 || m.Number.BitLen() > 159 {
		return nil, fmt.Errorf("encode manifest: invalid manifest number %v", m.Number)
	}
	if !m.ThisUpdate.Before(m.NextUpdate) {
		return nil, fmt.Errorf("encode manifest %s: thisUpdate %s is not before nextUpdate %s", m.Number, m.ThisUpdate, m.NextUpdate)
	}
	files := slices.Clone(m.Files)
	slices.SortFunc(files, func(a, b FileHash) int { return strings.Compare(a.Name, b.Name) })
	for i, f := range files {
		if !validFileName(f.Name) {
			return nil, fmt.Errorf("encode manifest %s: invalid file name %q", m.Number, f.Name)
		}
		if i > 0 && files[i-1].Name == f.Name {
			return nil, fmt.Errorf("encode manifest %s: duplicate file %q", m.Number, f.Name)
		}
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(m.Number)
		addGeneralizedTime(b, m.ThisUpdate)
		addGeneralizedTime(b, m.NextUpdate)
		b.AddASN1ObjectIdentifier(oidSHA256)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, f := range files {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.Name)) })
					b.AddASN1BitString(f.Hash[:])
				})
			}
		})
	})
	return b.Bytes()
}

// validFileName checks the RFC 9286 section 4.2.2 file name syntax.
func validFileName(name string) bool {
	dot := strings.IndexByte(name, '.')
	if dot <= 0 || len(name)-dot != 4 {
		return false
	}
	return !bytes.ContainsFunc([]byte(name[:dot]), func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_')
	}) && !bytes.ContainsFunc([]byte(name[dot+1:]), func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
}
