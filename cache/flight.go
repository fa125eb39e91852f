package cache

import (
	"errors"
	"sync"
)

// errAbandoned is what waiters get if a fill panics.
var errAbandoned = errors.New("fill abandoned")

// flight is one fill in progress; its waiters read b and err after done.
type flight struct {
	wg  sync.WaitGroup
	b   []byte
	err error
	// waiters counts the callers that joined it; under group.mu.
	waiters int
}

// group runs at most one fill per key at a time: the callers that arrive
// while a fill runs wait for it and share its result.
type group struct {
	mu sync.Mutex
	m  map[[32]byte]*flight
}

// do runs fn for key unless a fill for key is in progress, and reports
// whether the result came from another caller's fill.
func (g *group) do(key [32]byte, fn func() ([]byte, error)) (b []byte, err error, shared bool) {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		f.waiters++
		g.mu.Unlock()
		f.wg.Wait()
		return f.b, f.err, true
	}
	if g.m == nil {
		g.m = make(map[[32]byte]*flight)
	}
	f := &flight{err: errAbandoned}
	f.wg.Add(1)
	g.m[key] = f
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		f.wg.Done()
	}()
	f.b, f.err = fn()
	return f.b, f.err, false
}
