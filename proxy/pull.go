package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// minRefresh is how old the origin's notification must be before a path
// it does not name makes the puller fetch it again: a file the origin
// just published is found, and a flood of unknown paths costs at most one
// notification fetch a second.
const minRefresh = time.Second

// puller fetches, for one repository, files that its head does not name
// but the origin's notification does: each once, however many clients ask
// at the same time (single flight, as groupcache's load), checked against
// the hash the origin's notification gives.
//
// A fetch runs in a goroutine owned by the Server (bounded by the
// upstream client's deadlines, ended by Shutdown); the requests waiting
// for it leave at their own deadline (Config.PullWait) and the fetch goes
// on for the next one. The origin's notification is fetched once for all
// the files asked for at the same time, and a failure to fetch it is
// remembered for minRefresh: the requests in that second answer 502 at
// once instead of waiting for the origin again.
type puller struct {
	s *Server
	r *repo

	mu     sync.Mutex
	files  map[string]*entry // pulled files by path under Base
	calls  map[string]*pullCall
	notif  *originNotif // the origin's notification last fetched
	ncall  *notifCall   // its fetch under way, or nil
	nerr   error        // the last failure to fetch it, at nerrAt
	nerrAt time.Time
}

type pullCall struct {
	done chan struct{}
	e    *entry
	err  error
}

type notifCall struct {
	done chan struct{}
	n    *originNotif
	err  error
}

// originNotif is what the origin's notification names, by URI.
type originNotif struct {
	at   time.Time
	refs map[string]originRef
}

type originRef struct {
	sum  [32]byte
	kind fileKind
}

func newPuller(s *Server, r *repo) *puller {
	return &puller{s: s, r: r, files: map[string]*entry{}, calls: map[string]*pullCall{}}
}

// client returns the client that fetches for the repository: its own, or
// the Server's; nil means no pull-through.
func (p *puller) client() *upstream.Client { return pullClient(p.s, p.r) }

func pullClient(s *Server, r *repo) *upstream.Client {
	if r.cfg.Client != nil {
		return r.cfg.Client
	}
	return s.cfg.Client
}

// lookup returns a file pulled before, or nil.
func (p *puller) lookup(rel []byte) *entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files[string(rel)]
}

// forget drops a pulled file whose blob the cache evicted.
func (p *puller) forget(rel string) {
	p.mu.Lock()
	delete(p.files, rel)
	p.mu.Unlock()
}

// get returns the pulled file at rel, starting its fetch when none is
// under way, and waiting for it until ctx ends. It counts the request as
// a hit when the file is there, and otherwise as a miss.
func (p *puller) get(ctx context.Context, rel string) (*entry, error) {
	p.mu.Lock()
	if e := p.files[rel]; e != nil {
		// Pulled since the caller's lookup.
		p.mu.Unlock()
		p.r.m.hits.Add(1)
		return e, nil
	}
	p.r.m.misses.Add(1)
	c := p.calls[rel]
	if c != nil {
		p.r.m.pullShared.Add(1)
	} else {
		if !p.s.startPull() {
			p.mu.Unlock()
			return nil, fmt.Errorf("pull %s%s: %w", p.r.originDir, rel, context.Canceled)
		}
		c = &pullCall{done: make(chan struct{})}
		p.calls[rel] = c
		go p.run(rel, c)
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.e, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("pull %s%s: %w", p.r.originDir, rel, ctx.Err())
	}
}

// run fetches rel for call c, under the Server's context, and publishes
// the result to c's waiters.
func (p *puller) run(rel string, c *pullCall) {
	defer p.s.pulls.Done()
	c.e, c.err = p.fetch(p.s.ctx, rel)
	p.mu.Lock()
	delete(p.calls, rel)
	if c.err == nil {
		if len(p.files) >= p.s.cfg.MaxPulled {
			clear(p.files)
		}
		p.files[rel] = c.e
	}
	p.mu.Unlock()
	close(c.done)
}

// fetch pulls rel from the origin and stores it in the cache.
func (p *puller) fetch(ctx context.Context, rel string) (*entry, error) {
	uri := p.r.originDir + rel
	ref, err := p.ref(ctx, uri)
	if err != nil {
		return nil, err
	}
	p.r.m.pullFetches.Add(1)
	kind := rrdpxml.KindSnapshot
	if ref.kind == kindDelta {
		kind = rrdpxml.KindDelta
	}
	resp, err := p.client().Fetch(ctx, upstream.Request{URL: uri, Kind: kind})
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	// Past 16 MiB the body waits on disk for its hash check (upstream.Spill).
	sp, err := resp.Spill("", 16<<20)
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	defer sp.Close()
	sum := sp.Sum() // the client hashed the body as it streamed
	if resp.Body == nil {
		sum = sha256.Sum256(nil) // an origin's unasked-for 304
	}
	if sum != ref.sum {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("pull %s: sha-256 %x, the origin's notification says %x: %w", uri, sum[:8], ref.sum[:8], ErrPullHash)
	}
	b, err := sp.Bytes()
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("pull %s: %w", uri, err)
	}
	if err := p.s.cfg.Cache.PutBlob(ctx, sum, b); err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("pull %s: store: %w", uri, err)
	}
	e := &entry{kind: ref.kind, format: formatXML, plain: newVariant(sum, int64(len(b)), nil)}
	if strings.HasSuffix(rel, ".bin") {
		e.format = formatBin
	}
	e.setMod(p.s.cfg.Now())
	p.s.log.Info("pulled a file from the origin", "repo", p.r.cfg.Name, "uri", uri, "bytes", len(b))
	return e, nil
}

// ref returns what the origin's notification says of uri, fetching the
// notification when the copy in hand is older than OriginTTL, or older
// than minRefresh and silent about uri; one fetch at a time, shared by
// all callers, and none within minRefresh of a failed one.
func (p *puller) ref(ctx context.Context, uri string) (originRef, error) {
	p.mu.Lock()
	now := p.s.cfg.Now()
	n := p.notif
	if n != nil && now.Sub(n.at) < p.s.cfg.OriginTTL {
		if r, ok := n.refs[uri]; ok {
			p.mu.Unlock()
			return r, nil
		}
		if age := now.Sub(n.at); age < minRefresh {
			// The origin may have published uri just after that fetch:
			// wait out the second, then look again (one fetch for all).
			p.mu.Unlock()
			t := time.NewTimer(minRefresh - age)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return originRef{}, fmt.Errorf("pull %s: %w", uri, ErrNotNamed)
			}
			p.mu.Lock()
			now = p.s.cfg.Now()
			if n2 := p.notif; n2 != n {
				if r, ok := n2.refs[uri]; ok {
					p.mu.Unlock()
					return r, nil
				}
				if now.Sub(n2.at) < minRefresh {
					p.mu.Unlock()
					return originRef{}, fmt.Errorf("pull %s: %w", uri, ErrNotNamed)
				}
			}
		}
	}
	if p.nerr != nil && now.Sub(p.nerrAt) < minRefresh {
		err := p.nerr
		p.mu.Unlock()
		return originRef{}, fmt.Errorf("pull %s: failed within the last %v: %w", uri, minRefresh, err)
	}
	c := p.ncall
	if c == nil {
		c = &notifCall{done: make(chan struct{})}
		p.ncall = c
		p.mu.Unlock()
		c.n, c.err = p.fetchNotification(ctx)
		p.mu.Lock()
		p.ncall = nil
		if c.err != nil {
			p.nerr, p.nerrAt = c.err, p.s.cfg.Now()
		} else {
			p.notif, p.nerr = c.n, nil
		}
		p.mu.Unlock()
		close(c.done)
	} else {
		p.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return originRef{}, fmt.Errorf("pull %s: origin notification: %w", uri, ctx.Err())
		}
	}
	if c.err != nil {
		return originRef{}, c.err
	}
	if r, ok := c.n.refs[uri]; ok {
		return r, nil
	}
	return originRef{}, fmt.Errorf("pull %s: %w", uri, ErrNotNamed)
}

func (p *puller) fetchNotification(ctx context.Context) (*originNotif, error) {
	origin := p.r.cfg.Origin
	p.r.m.pullNotifications.Add(1)
	resp, err := p.client().Fetch(ctx, upstream.Request{URL: origin, Kind: rrdpxml.KindNotification})
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("origin notification %s: %w", origin, err)
	}
	b, err := resp.ReadAll()
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("origin notification %s: %w", origin, err)
	}
	format, kind, err := irpki.Detect(b)
	if err == nil && kind != rrdpxml.KindNotification {
		err = fmt.Errorf("a %s", kind)
	}
	var n *rrdpxml.Notification
	if err == nil {
		if format == irpki.FormatBin {
			n, err = irpki.UnmarshalNotification(b, p.r.cfg.Limits)
		} else {
			n, _, err = rrdpxml.DecodeNotification(bytes.NewReader(b), p.r.cfg.Limits)
		}
	}
	if err != nil {
		p.r.m.pullErrors.Add(1)
		return nil, fmt.Errorf("origin notification %s: %w", origin, err)
	}
	on := &originNotif{at: p.s.cfg.Now(), refs: make(map[string]originRef, len(n.Deltas)+1)}
	on.refs[n.Snapshot.URI] = originRef{sum: n.Snapshot.Hash, kind: kindSnapshot}
	for _, d := range n.Deltas {
		on.refs[d.URI] = originRef{sum: d.Hash, kind: kindDelta}
	}
	return on, nil
}
