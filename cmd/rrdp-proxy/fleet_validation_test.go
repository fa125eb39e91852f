package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// fleetNode is a serve of a fleet with its admin listener.
type fleetNode struct {
	*running
	name, admin string
}

// fleetView is what a node's /status.json says of repository a and of
// the validation.
type fleetView struct {
	Role, Holder string
	Holds        []string // "repo@serial" or "repo@serial by node"
}

func (n *fleetNode) view(t *testing.T) fleetView {
	t.Helper()
	var doc struct {
		Repos []struct {
			Role   string `json:"role"`
			Holder string `json:"holder"`
		} `json:"repos"`
		Validation struct {
			Holds []struct {
				Repo   string `json:"repo"`
				Serial uint64 `json:"serial"`
				Node   string `json:"node"`
			} `json:"holds"`
		} `json:"validation"`
	}
	_, body := get(t, "http://"+n.admin+"/status.json")
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: status.json: %v", n.name, err)
	}
	var v fleetView
	if len(doc.Repos) == 1 {
		v.Role, v.Holder = doc.Repos[0].Role, doc.Repos[0].Holder
	}
	for _, h := range doc.Validation.Holds {
		s := fmt.Sprintf("%s@%d", h.Repo, h.Serial)
		if h.Node != "" {
			s += " by " + h.Node
		}
		v.Holds = append(v.Holds, s)
	}
	return v
}

// serial returns the serial of the notification.xml the node serves for
// path, 0 when it serves none.
func (n *fleetNode) serial(t *testing.T, path string) uint64 {
	t.Helper()
	code, b := get(t, n.base+path+"notification.xml")
	if code != http.StatusOK {
		return 0
	}
	nx, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	if err != nil {
		t.Fatalf("%s: notification.xml: %v", n.name, err)
	}
	return nx.Serial
}

// vrps returns the VRPs of the node's /vrps.json, nil before the first
// validation.
func (n *fleetNode) vrps(t *testing.T) []rpki.VRP {
	t.Helper()
	code, b := get(t, "http://"+n.admin+"/vrps.json")
	if code != http.StatusOK {
		return nil
	}
	vs, err := rpki.ParseVRPJSON(b)
	if err != nil {
		t.Fatalf("%s: /vrps.json: %v", n.name, err)
	}
	return vs
}

// holderAndOther waits until one of the two nodes holds the lease of
// their one repository and the other follows, and returns them.
func holderAndOther(t *testing.T, nodes []*fleetNode) (holder, other *fleetNode) {
	t.Helper()
	waitFor(t, "one lease holder", nodes[0].log, func() bool {
		holder, other = nil, nil
		for _, n := range nodes {
			switch n.view(t).Role {
			case "holder":
				holder = n
			case "follower":
				other = n
			}
		}
		return holder != nil && other != nil
	})
	return holder, other
}

// TestServeFleetValidate runs two nodes sharing a Redis, each validating
// with the gate on and a rule that any removed VRP breaks. Both serve the
// generator's VRPs at /vrps.json. A serial that removes VRPs is held by
// the lease holder: both nodes keep serving serial 1, and both
// /status.json list the hold (the other node's naming the holder).
// rrdp-proxy release asked of the node without the lease queues the
// release in Redis; the holder publishes the serial, and both nodes serve
// it and its VRPs. Then the holder stops with serial 3 held: the other
// node takes the lease over, holds the serial too, and releases it itself.
func TestServeFleetValidate(t *testing.T) {
	o := newOrigins(t, "a")
	redisAddr := redistest.Start(t).Addr()
	tals := o.tals(t, t.TempDir(), "a")
	var nodes []*fleetNode
	for i := range 2 {
		aln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &fleetNode{name: fmt.Sprintf("node-%d", i), admin: aln.Addr().String()}
		file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
		n.running = startServe(t, file, "127.0.0.1:0", func(addr string) {
			extra := fmt.Sprintf("[cache.redis]\nurl = \"redis://%s/0\"\nlease_ttl = \"5s\"\n\n"+
				"[validate]\ntals = [%q]\ngate = true\nmax_vrp_loss = 0.0001\ninterval = \"1h\"\n", redisAddr, tals[0])
			o.writeConfig(t, file, addr, extra, "a")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("[server]\n"), fmt.Appendf(nil, "[server]\nnode = %q\nadmin_listen = %q\n", n.name, n.admin), 1)
			writeAtomic(t, file, b)
		}, aln)
		nodes = append(nodes, n)
	}
	repo := o.repos["a"]
	path := o.proxyPath("a")
	both := func(what string, cond func(n *fleetNode) bool) {
		t.Helper()
		for _, n := range nodes {
			waitFor(t, n.name+": "+what, n.log, func() bool { return cond(n) })
		}
	}
	sameVRPs := func(what string) {
		t.Helper()
		want := repo.VRPs()
		both(what+": /vrps.json has the generator's VRPs", func(n *fleetNode) bool { return rpki.DiffVRPs(n.vrps(t), want, 0) == "" })
	}
	removing := func() uint64 {
		t.Helper()
		before := repo.VRPs()
		if err := repo.Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
			t.Fatal(err)
		}
		if d := rpki.DiffVRPs(repo.VRPs(), before, 0); strings.Contains(d, " 0 missing") || d == "" {
			t.Fatalf("serial %d removes no VRP, the test needs one: %s", repo.Info().Serial, d)
		}
		return repo.Info().Serial
	}

	both("serial 1 served", func(n *fleetNode) bool { return n.serial(t, path) == 1 })
	sameVRPs("serial 1")
	holder, other := holderAndOther(t, nodes)

	second := removing()
	held := fmt.Sprintf("a@%d", second)
	waitFor(t, "serial 2 held by "+holder.name, holder.log, func() bool { return strings.Join(holder.view(t).Holds, ",") == held })
	waitFor(t, "the hold shown by "+other.name, other.log, func() bool { return strings.Join(other.view(t).Holds, ",") == held+" by "+holder.name })
	for _, n := range nodes {
		if got := n.serial(t, path); got != 1 {
			t.Errorf("%s serves serial %d while %d is held, want 1", n.name, got, second)
		}
	}
	code, stdout, stderr := runCLI(t, "release", "--admin", other.admin, "a")
	if code != 0 || !strings.HasPrefix(stdout, "queued: release of serial 2 (held by "+holder.name) {
		t.Fatalf("release through %s: exit %d, stdout %q, stderr %q", other.name, code, stdout, stderr)
	}
	t.Logf("release through %s: %s", other.name, strings.TrimSpace(stdout))
	both("serial 2 served", func(n *fleetNode) bool { return n.serial(t, path) == second })
	sameVRPs("serial 2 released")
	both("no hold", func(n *fleetNode) bool { return len(n.view(t).Holds) == 0 })
	if !strings.Contains(holder.log.String(), "fleet: release request honoured") {
		t.Errorf("%s does not log the release it honoured:\n%s", holder.name, holder.log)
	}

	// The holder stops with serial 3 held: the other node holds it too.
	third := removing()
	held = fmt.Sprintf("a@%d", third)
	waitFor(t, "serial 3 held by "+holder.name, holder.log, func() bool { return strings.Join(holder.view(t).Holds, ",") == held })
	holder.stop(t)
	waitFor(t, other.name+" takes the lease and holds serial 3", other.log, func() bool {
		v := other.view(t)
		return v.Role == "holder" && strings.Join(v.Holds, ",") == held
	})
	if got := other.serial(t, path); got != second {
		t.Errorf("%s serves serial %d after the failover, want %d", other.name, got, second)
	}
	code, stdout, stderr = runCLI(t, "release", "--admin", other.admin, "a")
	if code != 0 || !strings.HasPrefix(stdout, fmt.Sprintf("released a serial %d", third)) {
		t.Fatalf("release through the new holder: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	waitFor(t, "serial 3 served", other.log, func() bool { return other.serial(t, path) == third })
	want := repo.VRPs()
	waitFor(t, "serial 3 validated", other.log, func() bool { return rpki.DiffVRPs(other.vrps(t), want, 0) == "" })
	other.stop(t)
}
