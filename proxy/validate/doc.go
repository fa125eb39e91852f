// Package validate implements the node's relying-party view of the
// repositories it follows: every new state of every repository is
// validated as a relying party would (RFC 6487, RFC 9286, RFC 9582, ASPA;
// transcode/rpki), across repositories, since a tree crosses them; what
// each serial adds and removes is recorded; and an opt-in gate holds back
// a serial that breaks a rule (DESIGN.md, invariant 9).
//
// A Validator wraps the follower's follow.Store (Store): it sees every
// head before the store does. It reads the objects of a head from the
// head's snapshot (snapshot.bin through transcode/irpki, or the XML),
// always through Config.Open, and keeps them per publication point: a
// group whose pin did not change is taken over from the repository's
// previous state without a copy or a hash, and rpki.Validator reuses the
// result of every publication point whose CA certificate, resources and
// manifest did not change. A serial that changes one CA costs that CA's
// signatures plus one pass over the snapshot's group pins.
//
// Observe (the default): a head goes to the store at once, and is
// validated afterwards by Run's goroutine; heads that arrive during a
// run are validated together in the next one. Publication never waits for
// validation, and a legitimate mass withdrawal is never blocked.
//
// Gate (Config.Gate): PutHead validates the candidate state inline, at
// the same instant as the state served (so that what expired meanwhile is
// not blamed on the serial), and judges the difference by Config.Rules. A
// serial that breaks one is not stored: PutHead returns an error wrapping
// ErrHeld, the follower keeps its last good state and tries again at its
// next poll, which costs a lookup while the serial is the same. Release
// publishes a held serial on an operator's word.
//
// In a fleet (proxy/fleet) every node has a Validator over every
// repository. The lease holder's follower writes through Store, so that
// its gate judges each serial before the cache and Redis get it; the
// heads a node installs from Redis are given to Seed and observed, which
// also drops a hold judged against a state no longer served, and Drop
// forgets the holds of a follower that stopped. After a failover the new
// holder's gate compares the serial with the state it had been observing,
// the one served, and holds the same serial again. A release asked of a
// node that does not hold the lease is queued in Redis for the one that
// does; that node's gate asks Config.Released when it first holds a
// serial and at each attempt of it, and publishes the serial as Release
// does. The gate judges on the publishing side only: a node never refuses
// a head it installs, since what Redis holds was published by the
// holder's gate or released by an operator.
package validate
