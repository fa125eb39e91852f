package e2e_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// TestMirrorConvergence is issue 14's "the same bytes on every node": two
// `rrdp-proxy serve` processes in mirror mode without Redis, with the same
// mirror_base, in front of one origin (a generated repository, profile
// small). Node "deltas" follows from serial 1 and takes every serial up to
// 20 by deltas (one, then several per sync); node "snapshot" starts when
// the origin is at serial 20 and takes its snapshot. Both must then serve
// the same notification.xml and notification.bin (session, serial,
// snapshot and deltas: URIs and hashes), and the same bytes for every file
// those name, their gzip copies decoding to the same.
//
// RRDP_E2E_CONVERGE_ROAS=N uses a repository of one CA with N ROAs
// instead (4000 make a snapshot of about 9 MB, which a node may store as
// fragments): a measurement, slower than CI wants.
func TestMirrorConvergence(t *testing.T) {
	const last = 20
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	origin, err := rp.NewOrigin(rp.OriginConfig{Dir: dir, PKI: pki, NoIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { origin.Close() })
	prof, err := repotest.LookupProfile("small")
	if err != nil {
		t.Fatal(err)
	}
	if s := os.Getenv("RRDP_E2E_CONVERGE_ROAS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RRDP_E2E_CONVERGE_ROAS=%q: want a positive number", s)
		}
		prof = repotest.Profile{Name: "converge", Members: 1, ROAs: n, EEKeys: 16}
	}
	now := time.Now().UTC().Truncate(time.Second)
	repo, err := repotest.Create(filepath.Join(dir, "repo"), repotest.Config{Profile: prof, Seed: 20, BaseURL: origin.URL() + "repo/"},
		now, repotest.Options{KeyCache: keyCache})
	if err != nil {
		t.Fatal(err)
	}
	notif := origin.URL() + "repo/rrdp/notification.xml"
	const base = "https://mirror.example.net/"
	path := fmt.Sprintf("/localhost:%d/repo/rrdp/", origin.Port())

	first := repo.Info().Objects
	byDeltas := startConvergeNode(t, pki, "deltas", notif, base)
	byDeltas.waitSerial(t, 1)
	// Node deltas takes serial 2 alone, then several deltas per sync.
	for serial := uint64(2); serial <= last; serial++ {
		now = now.Add(time.Minute)
		if err := repo.Advance(now, 1); err != nil {
			t.Fatal(err)
		}
		if serial == 2 || serial%5 == 0 {
			byDeltas.waitSerial(t, serial)
		}
	}
	t.Logf("the origin at serial %d: %d objects (%d at serial 1)", last, repo.Info().Objects, first)
	bySnapshot := startConvergeNode(t, pki, "snapshot", notif, base)
	bySnapshot.waitSerial(t, last)

	// What each node took from the origin: deltas only, and the snapshot.
	counts, err := origin.Counts()
	if err != nil {
		t.Fatal(err)
	}
	snaps := 0
	for k, n := range counts {
		if strings.Contains(k, "/snapshot.xml 200") {
			snaps += n
		}
	}
	if snaps != 2 {
		t.Errorf("the origin served %d snapshots (%v), want 2: serial 1 to node deltas, serial %d to node snapshot", snaps, counts, last)
	}

	for _, name := range []string{"notification.xml", "notification.bin"} {
		a, b := byDeltas.get(t, path+name), bySnapshot.get(t, path+name)
		na, nb := decodeNotif(t, name, a), decodeNotif(t, name, b)
		if na.SessionID != nb.SessionID || na.Serial != nb.Serial {
			t.Errorf("%s: node deltas serves session %s serial %d, node snapshot session %s serial %d", name, na.SessionID, na.Serial, nb.SessionID, nb.Serial)
		}
		if na.Snapshot != nb.Snapshot {
			t.Errorf("%s: the snapshots differ:\n  node deltas:   %s %x\n  node snapshot: %s %x", name, na.Snapshot.URI, na.Snapshot.Hash, nb.Snapshot.URI, nb.Snapshot.Hash)
		}
		da, db := deltaMap(na), deltaMap(nb)
		for s, ra := range da {
			rb, ok := db[s]
			switch {
			case !ok:
				t.Errorf("%s: node deltas lists delta %d (%s), node snapshot does not", name, s, ra.URI)
			case ra != rb:
				t.Errorf("%s: delta %d differs:\n  node deltas:   %s %x\n  node snapshot: %s %x", name, s, ra.URI, ra.Hash, rb.URI, rb.Hash)
			}
		}
		for s, rb := range db {
			if _, ok := da[s]; !ok {
				t.Errorf("%s: node snapshot lists delta %d (%s), node deltas does not", name, s, rb.URI)
			}
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the nodes serve different bytes (%d and %d bytes)", name, len(a), len(b))
		}
		t.Logf("%s: session %s serial %d, snapshot %s, %d and %d deltas listed", name, na.SessionID, na.Serial, na.Snapshot.URI, len(na.Deltas), len(nb.Deltas))
		// Every file either names: the same bytes from both nodes, and
		// the hash its notification gives.
		for _, ref := range namedFiles(na, nb) {
			rel, ok := strings.CutPrefix(ref.URI, base)
			if !ok {
				t.Errorf("%s names %s, not under mirror_base %s", name, ref.URI, base)
				continue
			}
			fa, fb := byDeltas.fetch(t, "/"+rel), bySnapshot.fetch(t, "/"+rel)
			for _, f := range []struct {
				node string
				fetched
			}{{"deltas", fa}, {"snapshot", fb}} {
				if !f.ok {
					t.Errorf("%s names %s: node %s answers status %d: %.200s", name, ref.URI, f.node, f.status, f.b)
				} else if sha256.Sum256(f.b) != ref.Hash {
					t.Errorf("%s names %s: node %s serves bytes of another hash", name, ref.URI, f.node)
				}
			}
			if fa.ok && fb.ok && !bytes.Equal(fa.b, fb.b) {
				t.Errorf("%s: the nodes serve different bytes (%d and %d bytes)", ref.URI, len(fa.b), len(fb.b))
			}
			// The gzip copy a relying party asks for decodes to the same.
			for _, n := range []*convergeNode{byDeltas, bySnapshot} {
				if err := n.checkGzip(t, "/"+rel, ref.Hash); err != nil {
					t.Errorf("%s, gzip from node %s: %v", ref.URI, n.name, err)
				}
			}
		}
	}
}

// convergeNode is a mirror node of TestMirrorConvergence.
type convergeNode struct {
	name   string
	addr   string
	proc   *serveProc
	client *http.Client
}

// startConvergeNode runs `rrdp-proxy serve` in mirror mode, plain HTTP on
// a free loopback port, with mirror_base base, following notif.
func startConvergeNode(t *testing.T, pki *rp.PKI, name, notif, base string) *convergeNode {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the process binds it
	file := filepath.Join(t.TempDir(), name+".toml")
	conf := fmt.Sprintf(`[server]
listen = [%q]
mirror_base = %q
node = %q

[cache]
memory = "64MiB"
state_dir = %q

[[repository]]
name = "repo"
origin = %q
mode = "mirror"
ca_file = %q
poll_interval = "1s"
jitter = 0.01
max_backoff = "2s"
`, addr, base, name, t.TempDir(), notif, pki.CAFile)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &convergeNode{name: name, addr: addr, proc: spawnServe(t, name, file), client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(n.client.CloseIdleConnections)
	n.proc.waitReady(t, n.client, "http://"+addr+"/readyz?repo=repo")
	return n
}

// fetched is a file fetched from a node: ok is false unless the status
// is 200.
type fetched struct {
	b      []byte
	ok     bool
	status int
}

// fetch GETs path from the node (at most 64 MiB).
func (n *convergeNode) fetch(t *testing.T, path string) fetched {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+n.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("node %s: %s: %v", n.name, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fetched{b: b, status: resp.StatusCode}
	}
	return fetched{b: b, ok: true, status: resp.StatusCode}
}

// checkGzip GETs path with Accept-Encoding: gzip and checks that what
// it sends decodes to bytes of hash.
func (n *convergeNode) checkGzip(t *testing.T, path string, hash [32]byte) error {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+n.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("node %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	var body io.Reader = io.LimitReader(resp.Body, 64<<20)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("Content-Encoding gzip, but: %w", err)
		}
		body = io.LimitReader(zr, 64<<20)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if sha256.Sum256(b) != hash {
		return fmt.Errorf("decodes to %d bytes of another hash", len(b))
	}
	return nil
}

// get is fetch of a file that must be there.
func (n *convergeNode) get(t *testing.T, path string) []byte {
	t.Helper()
	f := n.fetch(t, path)
	if !f.ok {
		t.Fatalf("node %s: %s: status %d: %.200s", n.name, path, f.status, f.b)
	}
	return f.b
}

// waitSerial waits until the node's /status.json says serial, for at most
// a minute.
func (n *convergeNode) waitSerial(t *testing.T, serial uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var got uint64
		if f := n.fetch(t, "/status.json"); f.ok {
			got = statusSerial(f.b)
			if got == serial {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s serves serial %d after a minute, want %d\n%s", n.name, got, serial, n.proc.log.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// statusSerial is the serial of the one repository in a /status.json.
func statusSerial(b []byte) uint64 {
	i := bytes.Index(b, []byte(`"serial":`))
	if i < 0 {
		return 0
	}
	var s uint64
	fmt.Sscan(string(b[i+len(`"serial":`):]), &s)
	return s
}

// decodeNotif decodes a notification.xml or notification.bin.
func decodeNotif(t *testing.T, name string, b []byte) *rrdpxml.Notification {
	t.Helper()
	var n *rrdpxml.Notification
	var err error
	if strings.HasSuffix(name, ".bin") {
		n, err = irpki.UnmarshalNotification(b, rrdpxml.Limits{})
	} else {
		n, _, err = rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// deltaMap indexes the deltas of n by serial.
func deltaMap(n *rrdpxml.Notification) map[uint64]rrdpxml.DeltaRef {
	m := map[uint64]rrdpxml.DeltaRef{}
	for _, d := range n.Deltas {
		m[d.Serial] = d
	}
	return m
}

// namedFiles are the snapshots and deltas that notifications name, once
// each.
func namedFiles(ns ...*rrdpxml.Notification) []rrdpxml.SnapshotRef {
	seen := map[rrdpxml.SnapshotRef]bool{}
	var out []rrdpxml.SnapshotRef
	add := func(r rrdpxml.SnapshotRef) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, n := range ns {
		add(n.Snapshot)
		for _, d := range n.Deltas {
			add(rrdpxml.SnapshotRef{URI: d.URI, Hash: d.Hash})
		}
	}
	return out
}
