package rpki

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
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
