package diskstore

import (
	"cmp"
	"path/filepath"
	"slices"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
)

// The cap (Config.MaxBytes) bounds the bytes of the directory's blobs and
// heads. A put that would exceed it first makes room (a pass): the blobs
// no head needs go first; then the files in retention (named by a head
// with Expires set), oldest first by the end of their retention and then
// by serial, across all repositories, a path with its gzip copy together,
// until the rest fits. A blob stays while any file kept needs it: the
// parts a retained snapshot shares with the current one cost nothing. The
// current state of every repository (the files its notifications name,
// the part lists and parts of composite ones) and the blobs of a publish
// in progress are never removed: when they alone exceed the cap, the pass
// drops every retained file, says so (a warning, OverMax, OverMaxCount)
// and does not run again before the next head, so that a state larger
// than the cap is served without a pass per blob.
//
// A pass writes the heads without their dropped files first, each
// atomically, and removes blobs only then: a crash in between leaves
// blobs no head names, which the next pass or GC removes, and never a
// head naming a missing blob. The dropped files are remembered (gone)
// until their retention ends, so that the follower's next head, which
// carries them over, is stored without them, and the cache answers 404 for
// them unless another tier holds them (cache.Cache.Hold, Dropped). A
// blob a response holds (Hold) stays until the response ends, counted
// against the cap: the pass drops older retained files for its room.

// full reports whether the directory lacks room for need more bytes and
// the writing of a head (reserve).
func (s *Store) full(need int64) bool {
	return s.max > 0 && s.Used()+need+s.reserve.Load() > s.max
}

// makeRoom runs a pass unless the directory has room for need more bytes
// or the last pass found the current state alone above the cap. A pass
// frees a low-water margin beyond need (passSlack), so that a serial's
// blobs do not each run a pass of their own once the directory is full.
func (s *Store) makeRoom(need int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.full(need) || s.led.stuck || s.led.waitsForRelease() {
		return
	}
	s.pass(need, s.passSlack())
}

// passSlack is the room a pass frees beyond what is asked: 1/64 of the
// cap (16 MiB for 1 GiB). Without it a full directory ran a pass for
// every blob written (each pass drops just enough, and the next blob no
// longer fits): on paper-1ca with a serial a second, several passes a
// serial, each over the whole retention window and rewriting the head.
// The price is at most that margin of retention (the oldest files)
// below the cap, as with Squid's low and high water marks.
func (s *Store) passSlack() int64 {
	return s.max / 64
}

// unit is a file in retention as the cap drops it: one path of one
// repository, with its gzip copy.
type unit struct {
	repo    string
	path    string
	files   []int // indexes in the head's Files
	expires time.Time
	serial  uint64
}

// pass makes the directory hold at most MaxBytes-need bytes, less room to
// write a head, as far as the current state allows, and drops retained
// files until slack more is free (only the cap itself decides whether
// the current state alone is over it). Store.mu is held for writing.
func (s *Store) pass(need, slack int64) {
	start := time.Now()
	s.passes.Add(1)
	now := s.now()
	l := &s.led
	for sum, t := range l.pending {
		if now.Sub(t) >= s.grace {
			delete(l.pending, sum)
		}
	}
	s.gone.prune(now)
	if len(l.broken) > 0 {
		s.logger.Error("diskstore: over the cap, but a stored head cannot be read: nothing removed", "used", s.Used(), "max_bytes", s.max)
		l.stuck = true
		return
	}
	keep := make(map[[32]byte]bool, len(l.blobs))
	used := s.headBytes.Load()
	take := func(sums [][32]byte) {
		for _, sum := range sums {
			if !keep[sum] {
				keep[sum] = true
				used += l.blobs[sum]
			}
		}
	}
	repos := make([]string, 0, len(l.heads))
	for r := range l.heads {
		repos = append(repos, r)
	}
	slices.Sort(repos)
	var units []*unit
	for _, repo := range repos {
		h := l.heads[repo]
		byPath := make(map[string]*unit)
		for i := range h.Files {
			f := &h.Files[i]
			switch {
			case !f.Live(now):
			case f.Expires.IsZero():
				// A list that cannot be read keeps nothing of its parts:
				// the file cannot be served from here without it (GC).
				sums, err := s.blobsOf(f)
				if err != nil {
					sums = [][32]byte{f.Key()}
				}
				take(sums)
			default:
				u := byPath[f.Path]
				if u == nil {
					u = &unit{repo: repo, path: f.Path, expires: f.Expires, serial: f.Serial}
					byPath[f.Path] = u
					units = append(units, u)
				}
				u.files = append(u.files, i)
				if f.Expires.After(u.expires) {
					u.expires = f.Expires
				}
			}
		}
	}
	current := used - s.headBytes.Load()
	for sum := range l.pending {
		take([][32]byte{sum})
	}
	// The blobs responses hold stay (hold.go) and take their room first:
	// the files dropped for them are the oldest, as for any other room.
	before := used
	leased, releases := l.leased()
	take(leased)
	held := used - before
	// Newest first: keep while the rest fits, drop from the first that
	// does not.
	slices.SortFunc(units, func(a, b *unit) int {
		return cmp.Or(b.expires.Compare(a.expires), cmp.Compare(b.serial, a.serial),
			cmp.Compare(a.repo, b.repo), cmp.Compare(a.path, b.path))
	})
	limit := s.max - need - s.reserve.Load()
	target := limit - slack
	var drop []*unit
	full := false
	// One list and one set for every unit: a pass over a long retention
	// window allocated its size again for each retained file.
	// The part lists are read into one buffer (appendBlobsOf).
	var sums [][32]byte
	var buf []byte
	seen := make(map[[32]byte]bool)
	for _, u := range units {
		if full {
			drop = append(drop, u)
			continue
		}
		sums = sums[:0]
		clear(seen)
		ok := true
		for _, i := range u.files {
			var err error
			if sums, err = s.appendBlobsOf(sums, &buf, &l.heads[u.repo].Files[i]); err != nil {
				ok = false // cannot be served from here: dropped
				break
			}
		}
		var add int64
		for _, sum := range sums {
			if !keep[sum] && !seen[sum] {
				seen[sum] = true
				add += l.blobs[sum]
			}
		}
		if ok && used+add > target {
			full = true
		}
		if !ok || full {
			drop = append(drop, u)
			continue
		}
		take(sums)
	}
	// Over the target with every retained file dropped: because of the
	// current state (over), or only because of what responses hold, which
	// the first release frees for the next pass.
	over := used-held > limit
	if !over && used > limit {
		l.waitRelease(releases)
		s.logger.Info("diskstore: over the cap while responses hold retained files it dropped; they are removed once the responses end",
			"max_bytes", s.max, "held_bytes", held, "used", s.Used())
	}
	dropped := s.dropFiles(drop, keep)
	var removed int
	var freed int64
	for sum, n := range l.blobs {
		if keep[sum] {
			continue
		}
		if err := s.removeBlob(sum, n); err != nil {
			s.logger.Warn("diskstore: cap: remove a blob", "blob", sum[:8], "err", err)
			continue
		}
		removed++
		freed += n
	}
	if removed > 0 {
		if err := syncDir(filepath.Join(s.dir, blobDir)); err != nil {
			s.logger.Warn("diskstore: cap", "err", err)
		}
	}
	s.evictions.Add(uint64(dropped))
	s.evictedBytes.Add(uint64(freed))
	if over {
		s.overCount.Add(1)
		l.stuck = true
		if !s.over.Swap(true) {
			s.logger.Warn("diskstore: the current state alone exceeds the cap: every retained file dropped, the current state kept and served; raise cache.disk",
				"max_bytes", s.max, "current_bytes", current, "used", s.Used())
		}
	} else if s.over.Swap(false) {
		s.logger.Info("diskstore: the current state fits the cap again", "max_bytes", s.max, "used", s.Used())
	}
	s.logger.Debug("diskstore: over the cap: retained files dropped, oldest first", "files", dropped, "blobs", removed,
		"bytes", freed, "used", s.Used(), "max_bytes", s.max, "took", time.Since(start).Round(time.Microsecond))
}

// dropFiles writes the heads without the files of drop and remembers
// them as gone. A head that cannot be written keeps its files, and keep
// gets their blobs. It returns the files dropped. Store.mu is held for
// writing.
func (s *Store) dropFiles(drop []*unit, keep map[[32]byte]bool) int {
	l := &s.led
	byRepo := make(map[string][]int)
	for _, u := range drop {
		byRepo[u.repo] = append(byRepo[u.repo], u.files...)
	}
	repos := make([]string, 0, len(byRepo))
	for r := range byRepo {
		repos = append(repos, r)
	}
	slices.Sort(repos)
	n := 0
	for _, repo := range repos {
		h, idx := l.heads[repo], byRepo[repo]
		slices.Sort(idx)
		nh := without(h, idx)
		size, err := writeHead(s.headPath(repo), repo, nh)
		if err != nil {
			s.logger.Error("diskstore: cap: write a head without its dropped files; they stay", "repo", repo, "err", err)
			for _, i := range idx {
				if sums, err := s.blobsOf(&h.Files[i]); err == nil {
					for _, sum := range sums {
						keep[sum] = true
					}
				} else {
					keep[h.Files[i].Key()] = true
				}
			}
			continue
		}
		for _, i := range idx {
			f := &h.Files[i]
			s.gone.add(f.Key(), f.Expires)
		}
		n += len(idx)
		l.mu.Lock()
		l.setHead(s, repo, nh, size, l.checked[repo])
		l.mu.Unlock()
	}
	return n
}

// Cap says how the store keeps to its cap.
func (s *Store) Cap() cache.TierCap {
	return cache.TierCap{
		Max: s.max, Used: s.Used(), Current: s.current.Load(),
		Evictions: s.evictions.Load(), EvictedBytes: s.evictedBytes.Load(),
		OverMax: s.over.Load(), OverMaxCount: s.overCount.Load(),
		Held: s.heldBytes(),
	}
}

// Dropped reports whether the store dropped the retained file whose key
// is key before its retention ended (the cap): Hold then refuses it, and
// the cache looks for it in the next tier or answers 404.
func (s *Store) Dropped(key [32]byte) bool { return s.gone.has(key) }
