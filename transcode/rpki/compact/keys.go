package compact

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
)

// Algorithm is the value of Signature.algorithm for the proxy's key.
const Algorithm = "Ed25519"

// Signer signs compact files with one or more Ed25519 keys. Ed25519
// signatures are deterministic: two nodes with the same keys and state
// give the same bytes.
//
// A Signer of several keys is for a key rollover: every signed message
// (the notification, each iMFT) carries the first key's signature in its
// signature field and the others' in more_signatures, all over the same
// bytes. A client accepts a message signed by at least one key it trusts,
// so that during the overlap relying parties holding the old key, the new
// key or both accept the same files. Make one with NewSigner(primary,
// more...) from keys, or with With from Signers (ParsePrivateKey's).
type Signer struct {
	keys []ed25519.PrivateKey
	ids  [][]byte
}

// NewSigner returns a Signer for key and, for a rollover, the more keys
// that sign beside it (in that order; a key given twice signs once).
func NewSigner(key ed25519.PrivateKey, more ...ed25519.PrivateKey) (*Signer, error) {
	s := &Signer{}
	for i, k := range append([]ed25519.PrivateKey{key}, more...) {
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("new signer: key %d: private key of %d bytes, want %d", i+1, len(k), ed25519.PrivateKeySize)
		}
		id, err := KeyID(k.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(s.ids, func(x []byte) bool { return bytes.Equal(x, id) }) {
			s.keys, s.ids = append(s.keys, k), append(s.ids, id)
		}
	}
	return s, nil
}

// With returns a Signer that signs with s's keys, then other's: s's first
// key stays the primary. s and other are unchanged.
func (s *Signer) With(other *Signer) *Signer {
	out, err := NewSigner(s.keys[0], append(slices.Clone(s.keys[1:]), other.keys...)...)
	if err != nil {
		panic(err) // both hold valid keys
	}
	return out
}

// KeyID returns the SHA-256 of pub's SubjectPublicKeyInfo.
func KeyID(pub ed25519.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	h := sha256.Sum256(spki)
	return h[:], nil
}

// Public returns the primary key's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.keys[0].Public().(ed25519.PublicKey) }

// KeyIDs returns the key ids of the signer's keys, the primary first.
func (s *Signer) KeyIDs() [][]byte { return slices.Clone(s.ids) }

// sign signs msg under the domain separation label with every key: the
// primary's signature and the others'.
func (s *Signer) sign(label string, msg []byte) (*irpkipb.Signature, []*irpkipb.Signature) {
	b := signedBytes(label, msg)
	var more []*irpkipb.Signature
	for i := range s.keys[1:] {
		more = append(more, &irpkipb.Signature{Algorithm: Algorithm, KeyId: s.ids[i+1], Signature: ed25519.Sign(s.keys[i+1], b)})
	}
	return &irpkipb.Signature{Algorithm: Algorithm, KeyId: s.ids[0], Signature: ed25519.Sign(s.keys[0], b)}, more
}

func signedBytes(label string, msg []byte) []byte {
	b := make([]byte, 0, len(label)+1+len(msg))
	b = append(append(append(b, label...), 0), msg...)
	return b
}

// MarshalPrivateKey returns key as a PKCS #8 PEM block ("PRIVATE KEY").
func MarshalPrivateKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey returns pub as a PKIX PEM block ("PUBLIC KEY"): the
// trust file of relying parties.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey parses a PKCS #8 PEM Ed25519 private key.
func ParsePrivateKey(data []byte) (*Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("parse private key: no PEM block \"PRIVATE KEY\"")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key: a %T, want Ed25519", k)
	}
	return NewSigner(ek)
}

// Keys are the public keys a relying party trusts, by key id.
type Keys map[string]ed25519.PublicKey

// ParseKeys parses a trust file: one or more PEM "PUBLIC KEY" blocks of
// Ed25519 keys (two during a key rollover).
func ParseKeys(data []byte) (Keys, error) {
	keys := Keys{}
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("parse trust file: block %d is %q, want \"PUBLIC KEY\"", n, b.Type)
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse trust file: block %d: %w", n, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("parse trust file: block %d is a %T, want Ed25519", n, k)
		}
		id, err := KeyID(ek)
		if err != nil {
			return nil, err
		}
		keys[string(id)] = ek
	}
	if len(keys) == 0 {
		return nil, errors.New("parse trust file: no PEM \"PUBLIC KEY\" block")
	}
	return keys, nil
}
