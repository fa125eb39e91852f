package compact

import (
	"errors"
	"fmt"
	"time"

	"github.com/irpki/rrdp-proxy/proto/irpkipb"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// Feed is one compact publication a client follows, as SyncAll takes it.
type Feed struct {
	// Name names the publication in errors and skips: its notification
	// URL.
	Name string
	// Prev is its state verified before (nil: none).
	Prev *State
	// Notification is the notification's content, when Err is nil.
	Notification []byte
	// Err, if set, is why the notification could not be fetched: the
	// publication keeps Prev.
	Err error
	// Fetch fetches the snapshot and deltas the notification names.
	Fetch Fetcher
}

// FeedResult is what became of a Feed.
type FeedResult struct {
	// State is the state to keep: the new one when it verified, else
	// Prev (nil when there was none).
	State *State
	// From names where State came from when it is new: the snapshot's
	// URI, "deltas N to M", or "state kept" for Prev's own serial.
	From string
	// Err is why the notification or the new state was refused, naming
	// the publication, then the file, the CA group and the entry; State
	// is Prev then.
	Err error
}

// Outcome is the result of SyncAll.
type Outcome struct {
	// Feeds holds, in the order of the feeds given, what became of each.
	Feeds []FeedResult
	// Result holds the VRPs and ASPAs of the union of the states used.
	Result *rpki.Result
	// Skips lists the CA groups left out without failing their
	// publication (their issuer in no publication followed, say).
	Skips []Skip
}

// Failed returns the errors of the feeds that failed, joined (nil: none).
func (o *Outcome) Failed() error {
	var errs []error
	for _, f := range o.Feeds {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errors.Join(errs...)
}

// SyncAll brings every feed to the state of its notification, as Advance
// does, and verifies the union of the states at now with trust, as a
// relying party validates across RRDP repositories: a group whose issuer's
// group is in another publication is verified against it; a group whose
// issuer is in none is skipped with the groups below it (Outcome.Skips),
// not a failure.
//
// Failures are isolated per publication. A new state (a new serial or
// session) is taken whole or not at all: when its notification, a file or
// one of its groups fails (a forged signature, a truncated file, a
// replayed older serial), the feed keeps Prev, its error names it, and the
// union is verified again with Prev in its place, so that the others still
// advance. A state kept (Prev, or a notification of Prev's serial) was
// verified whole before: a group of it that no longer verifies (its iMFT
// expired since) is skipped alone. So is a group whose CA fails against
// its issuer in another publication (revoked by the issuer's newer iMFT,
// say): publications fetched at different moments may disagree for a
// while, and a relying party leaves out such a CA, not the repository.
// The replay check of iMFT numbers is against the groups of every Prev, so
// a CA cannot go back by moving to another publication.
func SyncAll(feeds []Feed, trust Trust, now time.Time) *Outcome {
	n := len(feeds)
	out := &Outcome{Feeds: make([]FeedResult, n)}
	names := make([]string, n)
	prev := map[string]*irpkipb.CompactCA{}
	cands := make([]*State, n)
	for i, f := range feeds {
		names[i] = f.Name
		if f.Prev != nil {
			for uri, g := range f.Prev.groups {
				if _, ok := prev[uri]; !ok {
					prev[uri] = g
				}
			}
		}
		r := &out.Feeds[i]
		err := f.Err
		if err == nil {
			cands[i], r.From, err = Advance(f.Prev, f.Notification, f.Fetch, trust)
		}
		if err != nil {
			r.Err = fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	// choice[i] is the state of feed i in the union: the new one, else
	// Prev (kept[i]). A round that fails moves each failing feed to its
	// Prev, which cannot fail, so there are at most n+1 rounds, and one
	// when all is well.
	choice := make([]*State, n)
	kept := make([]bool, n)
	for i, f := range feeds {
		choice[i], kept[i] = f.Prev, true
		if cands[i] != nil {
			choice[i], kept[i] = cands[i], cands[i] == f.Prev
		}
	}
	for {
		u := verifyUnion(choice, kept, names, now, trust, prev)
		if len(u.failed) == 0 {
			out.Result, out.Skips = u.res, u.skips
			break
		}
		for i, err := range u.failed {
			out.Feeds[i].Err = fmt.Errorf("%s: %w", names[i], fileError(out.Feeds[i].From, err))
			choice[i], kept[i] = feeds[i].Prev, true
		}
	}
	for i, f := range feeds {
		r := &out.Feeds[i]
		r.State = choice[i]
		if r.Err != nil || r.State == f.Prev {
			r.From = ""
		}
	}
	return out
}
