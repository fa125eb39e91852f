package main

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"slices"

	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy/fleet"
	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/irpki/rrdp-proxy/proxy/validate"
)

// fleetValidation is the validation of a fleet's node as its server shows
// it: the node's own Validator, plus the serials the gates of the other
// nodes hold (their followers' reports, through the status board), and a
// release that reaches the node whose gate holds the serial.
type fleetValidation struct {
	*validate.Validator
	fleet *fleet.Node
	board *fleet.Reporter
	repos []repoKey // in the configuration's order
}

// repoKey is a repository's name and key.
type repoKey struct{ name, key string }

func newFleetValidation(v *validate.Validator, n *fleet.Node, board *fleet.Reporter, cfg *conf.Config) *fleetValidation {
	f := &fleetValidation{Validator: v, fleet: n, board: board}
	for i := range cfg.Repositories {
		r := &cfg.Repositories[i]
		f.repos = append(f.repos, repoKey{r.Name, r.Key()})
	}
	return f
}

// Status returns the Validator's status with the holds of the other
// nodes: for each repository this node watches, the serial its holder's
// follower reports held, unless this node serves it already.
func (f *fleetValidation) Status() *status.Validation {
	st := f.Validator.Status()
	for _, r := range f.repos {
		rs, ok := f.board.Status(r.key)
		if !ok || rs.Role != fleet.Watcher {
			continue // a holder's own gate shows its holds
		}
		hd := rs.Follow.Holding
		if hd.Serial == 0 {
			continue
		}
		if h := f.fleet.Cache().Head(r.key); h != nil && h.Session == hd.Session && h.Serial >= hd.Serial {
			continue // released since the report
		}
		node := rs.Holder
		if node == "" {
			node = "the lease holder"
		}
		st.Holds = append(st.Holds, status.Hold{Repo: r.name, Session: hd.Session, Serial: hd.Serial, Since: hd.Since, Why: []string{hd.Err}, Node: node})
	}
	slices.SortFunc(st.Holds, func(a, b status.Hold) int { return cmp.Compare(a.Repo, b.Repo) })
	return st
}

// Release releases the serial held for the repository called repo (or
// with that key): here, when this node publishes the repository (it holds
// the lease, or polls alone while Redis is unreachable), as a solo node
// does; else through Redis, for the lease holder (fleet.Node.RequestRelease),
// and the answer says so. A holder that holds nothing itself (it took the
// lease over since the hold was reported) queues it too: its gate honours
// it when it holds the serial.
func (f *fleetValidation) Release(ctx context.Context, repo string) (string, error) {
	i := slices.IndexFunc(f.repos, func(r repoKey) bool { return r.name == repo || r.key == repo })
	if i < 0 {
		return f.Validator.Release(ctx, repo) // not held: no such repository
	}
	key := f.repos[i].key
	st, _ := f.fleet.Status(key)
	switch st.Role {
	case fleet.Solo:
		return f.Validator.Release(ctx, repo)
	case fleet.Holder:
		msg, err := f.Validator.Release(ctx, repo)
		if !errors.Is(err, fs.ErrNotExist) {
			return msg, err
		}
	}
	return f.fleet.RequestRelease(ctx, key)
}
