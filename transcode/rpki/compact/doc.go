// Package compact implements the compact iRPKI format of Schulmann and
// Vogel ("Pruning the Tree: Rethinking RPKI Architecture From The Ground
// Up", 2025, sections VI-B to VI-F and Appendix B): per validated CA, its
// iROAs (RFC 9582 payloads without CMS and EE certificate), compact ASPAs,
// and an iMFT merging its manifest (RFC 9286) and CRL (RFC 6487), signed by
// the proxy's own key (or keys, during a rollover: see Signer); the CA
// certificate is kept as DER, or replaced by a CA record the proxy signs
// (Builder.OmitCertificates).
//
// The producer side (Build, Publication) turns a tree validated by
// transcode/rpki into a signed notification, a snapshot and deltas per CA
// group; the client side (ParseNotification, State) verifies them and
// turns them into VRPs. A publication is per repository while a tree may
// cross repositories: SyncAll follows several publications at once, each
// with its own state, and verifies the chains across their union, as a
// relying party validates across RRDP repositories.
//
// Trust: the proxy holds no CA key. A relying party that uses this format
// trusts the proxy operator as its validator, as it would an RTR cache: the
// content of ROAs and ASPAs, the revocation of EE certificates, and the
// completeness of each publication point are vouched for by the proxy's
// signature. The CA certificates, when kept, are checked end to end: their
// signatures from the trust anchor down, their validity and their
// resources; a lean publication makes the chain below the trust anchors the
// proxy's word as well. Either way the client checks every iROA's prefixes
// and every ASPA's customer against the resources of its CA.
package compact
