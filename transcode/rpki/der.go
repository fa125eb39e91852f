package rpki

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Context-specific tags used throughout.
var (
	tagExplicit0 = cbasn1.Tag(0).Constructed().ContextSpecific()
	tagExplicit1 = cbasn1.Tag(1).Constructed().ContextSpecific()
	tagExplicit3 = cbasn1.Tag(3).Constructed().ContextSpecific()
	tagImplicit0 = cbasn1.Tag(0).ContextSpecific()
	tagURI       = cbasn1.Tag(6).ContextSpecific()
)

// addTime adds t as UTCTime before 2050 and as GeneralizedTime from 2050 on
// (RFC 5280 section 4.1.2.5), truncated to the second.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

// addGeneralizedTime adds t as GeneralizedTime truncated to the second.
func addGeneralizedTime(b *cryptobyte.Builder, t time.Time) {
	b.AddASN1GeneralizedTime(t.UTC().Truncate(time.Second))
}

// addAlgorithm adds an AlgorithmIdentifier; withNull adds a NULL parameter.
func addAlgorithm(b *cryptobyte.Builder, oid []int, withNull bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if withNull {
			b.AddASN1NULL()
		}
	})
}

// isPrintable reports whether s fits a PrintableString.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-',
			c == '.', c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

// encodeName returns the DER Name holding only a CommonName as a
// PrintableString, the RFC 6487 section 4.4 profile.
func encodeName(cn string) ([]byte, error) {
	if cn == "" {
		return nil, errors.New("empty common name")
	}
	if !isPrintable(cn) {
		return nil, fmt.Errorf("common name %q is not a PrintableString", cn)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidCommonName)
				b.AddASN1(cbasn1.PrintableString, func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(cn))
				})
			})
		})
	})
	return b.Bytes()
}

// checkSerial checks an RFC 5280 serial or CRL number: positive, at most 20
// octets.
func checkSerial(what string, n *big.Int) error {
	if n == nil {
		return fmt.Errorf("missing %s", what)
	}
	if n.Sign() <= 0 {
		return fmt.Errorf("%s %s is not positive", what, n)
	}
	if n.BitLen() > 159 {
		return fmt.Errorf("%s %s exceeds 20 octets", what, n)
	}
	return nil
}

// signSHA256 signs the SHA-256 digest of msg with PKCS #1 v1.5. The
// signature is deterministic.
func signSHA256(key *rsa.PrivateKey, msg []byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("missing private key")
	}
	d := sha256.Sum256(msg)
	return rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
}

// signTBS wraps a to-be-signed structure into the SEQUENCE {tbs,
// sha256WithRSAEncryption, BIT STRING signature} shared by certificates and
// CRLs.
func signTBS(tbs []byte, key *rsa.PrivateKey) ([]byte, error) {
	sig, err := signSHA256(key, tbs)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		addAlgorithm(b, oidSHA256WithRSA, true)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}
