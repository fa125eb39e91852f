package compact

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Algorithm is the value of Signature.algorithm for the proxy's key.
const Algorithm = "Ed25519"

// Signer signs compact files with an Ed25519 key. Ed25519 signatures are
// deterministic: two nodes with the same key and state give the same bytes.
type Signer struct {
	key ed25519.PrivateKey
	id  []byte
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("new signer: private key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	id, err := KeyID(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, id: id}, nil
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

// Public returns the signer's public key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// sign signs msg under the domain separation label.
func (s *Signer) sign(label string, msg []byte) []byte {
	return ed25519.Sign(s.key, signedBytes(label, msg))
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
