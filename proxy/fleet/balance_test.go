package fleet

import (
	"context"
	"fmt"
	"testing"
)

// TestBalance: the first node takes every lease; once two more nodes
// join, the leases spread to two per node, and every node serves every
// repository.
func TestBalance(t *testing.T) {
	e := newEnv(t)
	e.keys = []string{"repo-1", "repo-2", "repo-3", "repo-4", "repo-5", "repo-6"}
	held := func(nd *node) int {
		n := 0
		for _, r := range nd.Stats().Repos {
			if r.Role == Holder {
				n++
			}
		}
		return n
	}
	a := e.start("node-a")
	e.waitFor("node-a holds every lease", func() bool { return held(a) == len(e.keys) })
	b, c := e.start("node-b"), e.start("node-c")
	d := e.waitFor("two leases per node", func() bool { return held(a) == 2 && held(b) == 2 && held(c) == 2 })
	t.Logf("leases spread in %v", d)
	ctx := context.Background()
	for _, nd := range []*node{a, b, c} {
		for _, k := range e.keys {
			h := nd.Cache().Head(k)
			if h == nil {
				t.Errorf("%s serves no head for %s", nd.Name(), k)
				continue
			}
			for _, f := range h.Files {
				if _, err := nd.Cache().Blob(ctx, f.Sum); err != nil {
					t.Errorf("%s, %s serial %d: %v", nd.Name(), k, h.Serial, err)
				}
			}
		}
	}
	counts, err := a.rs.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(counts) != "map[node-a:2 node-b:2 node-c:2]" {
		t.Errorf("fleet in redis: got %v, want two leases for each of the three nodes", counts)
	}
}
