// Package rpki implements the objects of the Resource Public Key
// Infrastructure in DER: resource certificates (RFC 6487, RFC 3779), CRLs,
// CMS signed objects (RFC 6488), ROAs (RFC 9582), manifests (RFC 9286) and
// ASPA (draft-ietf-sidrops-aspa-profile), plus trust anchor locators
// (RFC 8630).
//
// Both sides are here. Parsing (ParseCert, ParseCRL, ParseSignedObject,
// ParseROA, ParseManifest, ParseASPA) checks the RFC 6487/6488 profiles and
// accepts BER, indefinite lengths included, as real RIPE NCC objects use;
// verification (Cert.Verify, CRL.Verify, SignedObject.Verify,
// Manifest.CheckFiles) checks signatures, issuance, revocation, validity
// and resource containment at a time the caller gives.
//
// The building side is deterministic: keys are derived from a seed
// (DeriveKey), every time stamp comes from the caller, and RSA PKCS #1 v1.5
// signatures depend only on the key and the message, so the same inputs give
// the same bytes on every run.
//
// Certificates and CRLs are encoded here with cryptobyte instead of
// crypto/x509.CreateCertificate: RFC 6487 fixes every field and extension,
// and x509 adds or reorders some of them (its own SKI/AKI rules, name string
// types, a verification pass after signing), which a strict relying party
// such as rpki-client would reject or which would cost time for nothing.
package rpki
