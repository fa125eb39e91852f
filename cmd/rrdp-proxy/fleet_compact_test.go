package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// compactView is what a node's /status.json says of the compact
// publication of its one repository.
type compactView struct {
	Session   string `json:"session"`
	Serial    uint64 `json:"serial"`
	Installed bool   `json:"installed"`
	Error     string `json:"error"`
}

func (n *fleetNode) compact(t *testing.T) (compactView, bool) {
	t.Helper()
	var doc struct {
		Validation struct {
			Compact []compactView `json:"compact"`
		} `json:"validation"`
	}
	_, body := get(t, "http://"+n.admin+"/status.json")
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: status.json: %v", n.name, err)
	}
	if len(doc.Validation.Compact) != 1 {
		return compactView{}, false
	}
	return doc.Validation.Compact[0], true
}

// serveRoundRobin runs a load balancer in front of a fleet on ln: each
// request goes to the next node, so that a relying party reads the
// notification from one node and the files it names from another; a node
// that refuses the connection (stopped) is skipped.
func serveRoundRobin(t *testing.T, ln net.Listener, nodes []*fleetNode) string {
	t.Helper()
	var next atomic.Uint64
	client := &http.Client{Timeout: 30 * time.Second}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range len(nodes) {
			n := nodes[next.Add(1)%uint64(len(nodes))]
			req, err := http.NewRequestWithContext(r.Context(), r.Method, n.base+r.URL.RequestURI(), nil)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.Header = r.Header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				continue // a node down: the next one
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no node answers", http.StatusBadGateway)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestServeFleetCompact runs two nodes sharing a Redis that both serve
// the compact format, signed with one key, behind a round-robin balancer.
// The lease holder signs the compact serials and the other node installs
// them: both serve the same notification, byte for byte, and the compact
// client, each of whose requests goes to the other node, gets the
// generator's VRPs at the first serial and by a delta after a serial.
// When the holder stops, the other node takes the lease over, continues
// the same compact session without a new serial for the takeover alone,
// and signs the next serial, which the client takes as a delta.
func TestServeFleetCompact(t *testing.T) {
	o := newOrigins(t, "a")
	redisAddr := redistest.Start(t).Addr()
	dir := t.TempDir()
	tals := o.tals(t, dir, "a")
	keys := filepath.Join(dir, "keys")
	if code, _, stderr := runCLI(t, "keygen", "--out", keys); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	// The balancer's address is the fleet's public base; it is known
	// only once the nodes run, and their configuration names it: a
	// listener taken first.
	lbln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbAddr := lbln.Addr().String()
	lbln.Close()
	var nodes []*fleetNode
	for i := range 2 {
		aln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &fleetNode{name: fmt.Sprintf("node-%d", i), admin: aln.Addr().String()}
		file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
		state := t.TempDir()
		n.running = startServe(t, file, "127.0.0.1:0", func(addr string) {
			var b strings.Builder
			fmt.Fprintf(&b, "[server]\nlisten = [%q]\nmirror_base = \"http://%s/\"\nallow_http_base = true\nnode = %q\nadmin_listen = %q\nlog_level = \"debug\"\n\n",
				addr, lbAddr, n.name, n.admin)
			fmt.Fprintf(&b, "[cache]\nmemory = \"64MiB\"\nstate_dir = %q\n\n[cache.redis]\nurl = \"redis://%s/0\"\nlease_ttl = \"5s\"\n\n", state, redisAddr)
			fmt.Fprintf(&b, "[validate]\ntals = [%q]\ninterval = \"1h\"\n\n[compact]\nkey = %q\n\n", tals[0], filepath.Join(keys, "key.pem"))
			fmt.Fprintf(&b, "[[repository]]\nname = \"a\"\norigin = %q\nmode = \"mirror\"\nca_file = %q\npoll_interval = \"1s\"\nformats = [\"xml\", \"bin\", \"compact\"]\n",
				o.notification("a"), o.ca)
			writeAtomic(t, file, []byte(b.String()))
		}, aln)
		nodes = append(nodes, n)
	}
	lbln, err = net.Listen("tcp", lbAddr)
	if err != nil {
		t.Fatal(err)
	}
	lb := serveRoundRobin(t, lbln, nodes)
	path := o.proxyPath("a") + "compact/notification.bin"
	stopped := map[*fleetNode]bool{}
	repo := o.repos["a"]

	// Every live node serves the same compact notification, at serial
	// want of one session.
	same := func(what string, want uint64) []byte {
		t.Helper()
		var b []byte
		waitFor(t, what+": every node serves compact serial "+fmt.Sprint(want), fleetLogs(nodes), func() bool {
			b = nil
			for _, n := range nodes {
				if stopped[n] {
					continue
				}
				v, ok := n.compact(t)
				if !ok || v.Serial != want {
					return false
				}
				code, got := get(t, n.base+path)
				if code != http.StatusOK || b != nil && !bytes.Equal(got, b) {
					return false
				}
				b = got
			}
			return b != nil
		})
		return b
	}
	out := filepath.Join(dir, "vrps.csv")
	clientLog := new(syncBuffer)
	syncTo := func(what string) string {
		t.Helper()
		want := rpki.SortVRPs(repo.VRPs())
		code, stdout, stderr := runCLI(t, "sync", "--once", "--trust", filepath.Join(keys, "key.pub"), "--vrps", out, lb+path)
		fmt.Fprintf(clientLog, "%s: exit %d\n%s%s", what, code, stdout, stderr)
		if code != 0 {
			t.Fatalf("%s: the compact client through the balancer: exit %d\n%s", what, code, clientLog)
		}
		if d := rpki.DiffVRPs(readVRPCSV(t, what, out), want, 10); d != "" {
			t.Fatalf("%s: the compact client's VRPs differ from the generator's: %s", what, d)
		}
		return stdout
	}

	first := same("serial 1", 1)
	holder, other := holderAndOther(t, nodes)
	hv, _ := holder.compact(t)
	waitFor(t, other.name+" shows the compact publication as installed", other.log, func() bool {
		v, _ := other.compact(t)
		return v.Installed && v.Session == hv.Session
	})
	if hv.Installed || hv.Error != "" {
		t.Errorf("the holder %s: compact status %+v, want published by itself without error", holder.name, hv)
	}
	syncTo("compact serial 1")

	if err := repo.Advance(time.Now().UTC().Add(time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	second := same("after a serial of the origin", 2)
	if bytes.Equal(first, second) {
		t.Fatal("the compact notification did not change after a serial")
	}
	if log := syncTo("compact serial 2"); !strings.Contains(log, " deltas)") {
		t.Errorf("compact serial 2: the client did not apply a delta:\n%s", log)
	}

	// The holder stops: the other node takes over the publication.
	holder.stop(t)
	stopped[holder] = true
	waitFor(t, other.name+" takes the lease and publishes compact itself", other.log, func() bool {
		v, ok := other.compact(t)
		return other.view(t).Role == "holder" && ok && !v.Installed
	})
	if v, _ := other.compact(t); v.Session != hv.Session || v.Serial != 2 || v.Error != "" {
		t.Fatalf("after the takeover: compact %+v, want session %s serial 2 (no new serial for the takeover alone)", v, hv.Session)
	}
	if _, b := get(t, other.base+path); !bytes.Equal(b, second) {
		t.Errorf("after the takeover the compact notification changed (%d bytes, was %d)", len(b), len(second))
	}
	if err := repo.Advance(time.Now().UTC().Add(2*time.Minute), 1); err != nil {
		t.Fatal(err)
	}
	same("after a serial under the new holder", 3)
	if log := syncTo("compact serial 3"); !strings.Contains(log, " deltas)") {
		t.Errorf("compact serial 3: the client did not continue the session by a delta:\n%s", log)
	}
	other.stop(t)
}

// fleetLogs is the logs of nodes, for a failure's message.
type fleetLogs []*fleetNode

func (ns fleetLogs) String() string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "--- %s\n%s", n.name, n.log)
	}
	return b.String()
}
