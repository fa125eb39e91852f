// Package rpki implements the objects of the Resource Public Key
// Infrastructure in DER: resource certificates (RFC 6487, RFC 3779), CRLs,
// CMS signed objects (RFC 6488), ROAs (RFC 9582), manifests (RFC 9286) and
// ASPA (draft-ietf-sidrops-aspa-profile), plus trust anchor locators
// (RFC 8630) and the validation of whole trees from a TAL to VRPs.
//
// Both sides are here. Parsing (ParseCert, ParseCRL, ParseSignedObject,
// ParseROA, ParseManifest, ParseASPA) checks the RFC 6487/6488 profiles and
// accepts BER, indefinite lengths included, as real RIPE NCC objects use;
// verification (Cert.Verify, CRL.Verify, SignedObject.Verify,
// Manifest.CheckFiles) checks signatures, issuance, revocation, validity
// and resource containment at a time the caller gives.
//
// # Validation
//
// A Validator validates trees as a relying party does, at a time the
// caller gives: from a TAL (ParseTAL, RFC 8630) and its TA certificate,
// through the CA certificates (RFC 6487 profile, RFC 3779 resources with
// inherit), the current manifest of each CA (RFC 9286: every listed file
// present with its hash, files not listed ignored, a stale manifest or CRL
// fails the publication point, manifest numbers only go up), its one CRL
// (signature, nextUpdate, revoked serials), down to ROAs (RFC 9582),
// ASPAs and Ghostbusters records. The Result holds the VRPs and ASPAs in
// rpki-client's order and formats (Result.WriteCSV, Result.WriteJSON),
// one CAResult per CA reached, with the reason when it failed, and one
// ObjectError per object rejected, naming it and its CA.
//
// Resource containment is the strict one of RFC 6487 section 7.2: a
// certificate that claims anything its issuer lacks is rejected whole, as
// rpki-client, FORT and Routinator do. The "reconsidered" algorithm of RFC
// 8360 (keep the overlap, drop the excess) would need new certificate
// policy OIDs that no repository uses, and treating the old OID with the
// new rules would make this validator accept what every deployed relying
// party rejects, so that the VRPs it reports could not be trusted to be
// what relying parties see.
//
// Objects come from a Source, keyed by rsync URI: TreeSource reads what
// rrdp-proxy sync writes (DIR/host/path), MapSource holds them in memory.
// The walk goes level by level from the TA; the publication points of one
// level are processed in parallel (the objects of a big point too), the
// CAs of the next level are sorted by URI and deduplicated (loops, second
// certificates for one key or one manifest, depth and count limits), so
// that the result depends only on the objects and the time.
//
// Incremental use (the follower): a long-lived Validator keeps, per
// publication point, the result of the last run keyed by the SHA-256 of the
// CA certificate, of its resolved resources and of the manifest, with the
// time window in which every validity check in it comes out the same. A
// point whose key is unchanged, whose window holds the new time, and whose
// listed files still have the manifest's hashes is not validated again:
// its VRPs, ASPAs and child CAs are reused, and only the points below a
// changed one, or with a changed manifest, cost signatures. A Source that
// also implements Hasher (the follower's state knows every object's hash)
// makes the file check free; otherwise the files are read and hashed. The
// cache holds what the last run used, so it stays the size of one tree.
//
// # Building
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
