package rpki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
)

// TAL returns a trust anchor locator (RFC 8630 section 2.2): the URIs of
// the TA certificate, one a line, an empty line, and the base64 of the TA's
// DER SubjectPublicKeyInfo in lines of 64 characters.
func TAL(uris []string, pub *rsa.PublicKey) ([]byte, error) {
	if len(uris) == 0 {
		return nil, fmt.Errorf("encode TAL: no URIs")
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode TAL: %w", err)
	}
	var sb strings.Builder
	for _, u := range uris {
		if !strings.HasPrefix(u, "rsync://") && !strings.HasPrefix(u, "https://") || strings.ContainsAny(u, " \t\r\n") {
			return nil, fmt.Errorf("encode TAL: invalid URI %q", u)
		}
		sb.WriteString(u)
		sb.WriteByte('\n')
	}
	sb.WriteByte('\n')
	enc := base64.StdEncoding.EncodeToString(spki)
	for len(enc) > 64 {
		sb.WriteString(enc[:64])
		sb.WriteByte('\n')
		enc = enc[64:]
	}
	sb.WriteString(enc)
	sb.WriteByte('\n')
	return []byte(sb.String()), nil
}

// TrustAnchorLocator is a parsed TAL (RFC 8630).
type TrustAnchorLocator struct {
	// Comments are the lines of the optional comment section, without
	// their "#".
	Comments []string
	// URIs locate the TA certificate, rsync or https, in the TAL's order.
	URIs []string
	// SPKI is the DER SubjectPublicKeyInfo of the TA, the key its
	// certificate must hold.
	SPKI []byte
}

// MaxTALSize caps the size of a TAL that ParseTAL reads: real ones hold a
// few URIs and a 2048-bit key, well under 2 KiB.
const MaxTALSize = 64 << 10

// maxTALURIs caps the URIs of a TAL.
const maxTALURIs = 64

// ParseTAL parses a TAL (RFC 8630 section 2.2): an optional comment section
// of lines starting with "#", one or more rsync or https URIs one a line, an
// empty line, then the base64 of the TA's DER SubjectPublicKeyInfo, which
// may be broken over lines. Line ends may be CRLF. The key must be the RSA
// key of RFC 7935 (2048 bits, exponent 65537).
func ParseTAL(data []byte) (*TrustAnchorLocator, error) {
	t, err := parseTAL(data)
	if err != nil {
		return nil, fmt.Errorf("parse TAL: %w", err)
	}
	return t, nil
}

func parseTAL(data []byte) (*TrustAnchorLocator, error) {
	if len(data) > MaxTALSize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(data), MaxTALSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not UTF-8 text")
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	t := &TrustAnchorLocator{}
	i := 0
	for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		t.Comments = append(t.Comments, strings.TrimPrefix(lines[i], "#"))
	}
	for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
		u := strings.TrimSpace(lines[i])
		lower := strings.ToLower(u)
		if !strings.HasPrefix(lower, "rsync://") && !strings.HasPrefix(lower, "https://") {
			return nil, fmt.Errorf("line %d: %q is not an rsync or https URI", i+1, u)
		}
		if strings.ContainsAny(u, " \t") || len(u) <= len("https://") {
			return nil, fmt.Errorf("line %d: invalid URI %q", i+1, u)
		}
		if len(t.URIs) == maxTALURIs {
			return nil, fmt.Errorf("line %d: more than %d URIs", i+1, maxTALURIs)
		}
		t.URIs = append(t.URIs, u)
	}
	if len(t.URIs) == 0 {
		return nil, fmt.Errorf("line %d: no URI", i+1)
	}
	if i == len(lines) {
		return nil, fmt.Errorf("no empty line and key after the URIs")
	}
	var b64 strings.Builder
	for _, l := range lines[i+1:] {
		b64.WriteString(strings.TrimSpace(l))
	}
	spki, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if len(spki) == 0 {
		return nil, fmt.Errorf("no key after the URIs")
	}
	if _, err := parseRSAKey(spki); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if canon, err := canonicalSPKI(spki); err != nil || !bytes.Equal(canon, spki) {
		return nil, fmt.Errorf("key: trailing data or not DER")
	}
	t.SPKI = spki
	return t, nil
}

// canonicalSPKI re-encodes a parsed SubjectPublicKeyInfo.
func canonicalSPKI(spki []byte) ([]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKIXPublicKey(pub)
}
