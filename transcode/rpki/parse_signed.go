package rpki

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// signed is the envelope that certificates and CRLs share (RFC 5280):
// SEQUENCE { tbs SEQUENCE, signatureAlgorithm, signature BIT STRING }.
type signed struct {
	name        string            // the TBS structure's name, for errors
	rawTBS, tbs cryptobyte.String // the TBS with and without its header
	sigAlg      cryptobyte.String // the outer signatureAlgorithm
	sig         []byte
}

// readSigned reads the envelope of der, a name (what) whose TBS part is
// called tbsName, and checks the outer signature algorithm.
func readSigned(der []byte, what, tbsName string) (*signed, error) {
	s := &signed{name: tbsName}
	in := cryptobyte.String(der)
	var outer cryptobyte.String
	var sig asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() ||
		!outer.ReadASN1Element(&s.rawTBS, cbasn1.SEQUENCE) || !outer.ReadASN1Element(&s.sigAlg, cbasn1.SEQUENCE) ||
		!outer.ReadASN1BitString(&sig) || !outer.Empty() {
		return nil, errors.New("malformed " + what)
	}
	if err := checkSigAlg(s.sigAlg); err != nil {
		return nil, fmt.Errorf("signatureAlgorithm: %w", err)
	}
	if sig.BitLength%8 != 0 {
		return nil, errors.New("signature has unused bits")
	}
	s.sig = sig.Bytes
	tbs := s.rawTBS
	if !tbs.ReadASN1(&s.tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed " + tbsName)
	}
	return s, nil
}

// checkInnerAlg reads the TBS's own signature field from tbs and checks
// that it is allowed and the same as the outer one (RFC 5280 section
// given).
func (s *signed) checkInnerAlg(tbs *cryptobyte.String, section string) error {
	var inner cryptobyte.String
	if !tbs.ReadASN1Element(&inner, cbasn1.SEQUENCE) {
		return errors.New("malformed signature algorithm")
	}
	if err := checkSigAlg(inner); err != nil {
		return fmt.Errorf("%s signature: %w", s.name, err)
	}
	if !bytes.Equal(inner, s.sigAlg) {
		return fmt.Errorf("signatureAlgorithm differs from the %s signature field (RFC 5280 section %s)", s.name, section)
	}
	return nil
}
