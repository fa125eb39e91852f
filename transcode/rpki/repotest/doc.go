// Package repotest implements a generator of synthetic RPKI repositories
// published over RRDP (RFC 8182), with real signatures: a trust anchor, a
// tree of CAs, ROAs (RFC 9582), ASPAs, and a manifest (RFC 9286) and a CRL
// (RFC 6487) per CA, signed with RSA-2048 (RFC 7935). It is meant for
// tests, the demo and benchmarks.
//
// A repository lives in a directory: the TAL (ta.tal, RFC 8630), the TA
// certificate (ta.cer), the RRDP files under rrdp/ (notification.xml, and
// snapshot.xml and delta.xml under rrdp/SESSION/SERIAL/RANDOM/, the way
// Krill lays them out), the VRPs the relying parties must output
// (expected-vrps.csv) and the generator's state (.repotest/state.json).
// Every https URI inside is the base URL plus the file's path relative to
// the directory, so serving the directory at the base URL is enough.
//
// A tree may be split over two RRDP repositories (Config.Split), as a
// real one is when members run their own publication points (Krill's
// delegated CAs): the TA, the intermediates and every CA certificate
// publish in the first, the delegated members' manifests, CRLs, ROAs and
// ASPAs in a second one, in the subdirectory delegated/ of the directory,
// served at its own base URL with its own notification, session and
// serials. A step makes a serial in each repository it changes, and
// only there.
//
// Create builds a repository from a Profile and a seed; Open and Advance
// evolve it by one delta per serial, with the churn of a real repository
// (manifests and CRLs reissued, ROAs added, replaced and withdrawn, a CA
// added and one removed) and with whatever reissuing the time elapsed
// since the last run requires (manifests, CRLs and certificates close to
// their expiry); RemoveCA removes a chosen member CA; ResetSession starts
// a new session. Everything is deterministic:
// the same seed, the same operations and the same "now" give the same
// bytes, whatever the number of workers.
//
// Time: certificates start a day before "now"; CA and EE certificates last
// a year, the TA's five years. Manifests and CRLs have thisUpdate an hour
// before "now" and nextUpdate three days after it. Each Advance or
// ResetSession first reissues, in its first delta, every manifest and CRL
// with less than two days left and every certificate with less than 30
// days left, so a repository advanced at least every day never goes stale,
// and one left alone for weeks is whole again after one Advance. "now" may
// not go back.
//
// The snapshot lists objects sorted by URI, which keeps each publication
// point together; Advance merges the previous snapshot with the changes in
// one streaming pass. A changed notification (and TAL, TA certificate and
// expected VRPs) gets a modification time at least a second after the
// previous one, so that HTTP servers' Last-Modified, at a resolution of a
// second, always changes with the content. Old deltas and the previous
// snapshot stay on disk; the notification lists the last 50 deltas.
//
// Every object is a pure function of the generator's state (serial
// numbers, validity, resources, ROA slots and versions), so the state file
// is small and an object is rebuilt only when it changes. Keys are derived
// from the seed (rpki.DeriveKey): each CA has its own key, as RPs require
// unique subject key identifiers for CAs, and the EE certificates of signed
// objects share a small pool of keys, which RPs accept and which avoids
// deriving one key per object. Derived keys can be kept in a key cache
// directory, so that regenerating a big profile costs signatures only.
package repotest
