package follow

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/irpki/irpkitest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// testRepo is a small publication server writing an RRDP repository into
// a directory that an origin serves: notification, snapshot and deltas in
// XML, and beside them the same in .bin (what a core rrdp-proxy serves).
type testRepo struct {
	t       *testing.T
	dir     string // served directory
	base    string // URL of dir/rrdp/
	session string
	serial  uint64
	objs    map[string][]byte
	rnd     *rand.Rand
	added   int
	count   int  // objects of a new session (120)
	size    int  // largest object of a new session, in bytes (256; the smallest is a quarter)
	sorted  bool // snapshots list the objects in URI order, not shuffled
	changes int  // objects an advance replaces or withdraws (8: 5 replaced, 3 withdrawn)

	snap, binSnap     rrdpxml.SnapshotRef
	deltas, binDeltas []rrdpxml.DeltaRef
	history           map[uint64]map[string][]byte
	snaps             map[uint64][2]rrdpxml.SnapshotRef

	// Options of the next advance.
	overwrite  bool     // a publish without hash over an existing object
	also       []string // objects replaced too (not among the picked)
	badReplace bool     // a replace naming a wrong hash
}

func newTestRepo(t *testing.T, dir, origin string, seed uint64) *testRepo {
	r := &testRepo{t: t, dir: dir, base: origin + "rrdp/", rnd: rand.New(rand.NewPCG(seed, 7))}
	r.reset(seed)
	return r
}

// reset starts a new session from the objects of seed.
func (r *testRepo) reset(seed uint64) {
	r.session, r.serial = irpkitest.Session(seed), 1
	r.objs = make(map[string][]byte)
	for _, o := range irpkitest.Objects(irpkitest.Spec{Seed: seed, Objects: cmp.Or(r.count, 120), MinSize: cmp.Or(r.size, 256) / 4, MaxSize: cmp.Or(r.size, 256)}) {
		r.objs[o.URI] = o.Content
	}
	r.deltas, r.binDeltas = nil, nil
	r.history = map[uint64]map[string][]byte{}
	r.snaps = map[uint64][2]rrdpxml.SnapshotRef{}
	r.writeSnapshot()
	r.writeNotification()
}

func (r *testRepo) sortedURIs() []string {
	uris := make([]string, 0, len(r.objs))
	for u := range r.objs {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	return uris
}

// put writes an XML file and its .bin under rrdp/<session>/<serial>/ and
// returns the URIs and hashes of both.
func (r *testRepo) put(name string, xml []byte) (xu string, xh [32]byte, bu string, bh [32]byte) {
	rel := fmt.Sprintf("%s/%d/%s", r.session, r.serial, name)
	var bin bytes.Buffer
	if _, err := irpki.XMLToBin(&bin, bytes.NewReader(xml), irpki.Options{}); err != nil {
		r.t.Fatal(err)
	}
	r.write(rel+".xml", xml)
	r.write(rel+".bin", bin.Bytes())
	return r.base + rel + ".xml", sha256.Sum256(xml), r.base + rel + ".bin", sha256.Sum256(bin.Bytes())
}

func (r *testRepo) write(rel string, b []byte) {
	p := filepath.Join(r.dir, "rrdp", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRepo) writeSnapshot() {
	var buf bytes.Buffer
	w, err := rrdpxml.NewWriter(&buf, rrdpxml.Header{Kind: rrdpxml.KindSnapshot, SessionID: r.session, Serial: r.serial})
	if err != nil {
		r.t.Fatal(err)
	}
	// Not sorted: the origin's order, unlike a regenerated snapshot.
	uris := r.sortedURIs()
	if !r.sorted {
		r.rnd.Shuffle(len(uris), func(i, j int) { uris[i], uris[j] = uris[j], uris[i] })
	}
	for _, u := range uris {
		w.Publish(u, nil, r.objs[u])
	}
	if err := w.Close(); err != nil {
		r.t.Fatal(err)
	}
	xu, xh, bu, bh := r.put("snapshot", buf.Bytes())
	r.snap, r.binSnap = rrdpxml.SnapshotRef{URI: xu, Hash: xh}, rrdpxml.SnapshotRef{URI: bu, Hash: bh}
	r.history[r.serial] = maps.Clone(r.objs)
	r.snaps[r.serial] = [2]rrdpxml.SnapshotRef{r.snap, r.binSnap}
}

func (r *testRepo) notification(bin bool) *rrdpxml.Notification {
	n := &rrdpxml.Notification{SessionID: r.session, Serial: r.serial, Snapshot: r.snap, Deltas: r.deltas}
	if bin {
		n.Snapshot, n.Deltas = r.binSnap, r.binDeltas
	}
	n.Deltas = append([]rrdpxml.DeltaRef(nil), n.Deltas...)
	return n
}

func (r *testRepo) writeNotification() {
	r.writeNotifications(r.notification(false), r.notification(true))
}

func (r *testRepo) writeNotifications(x, b *rrdpxml.Notification) {
	var buf bytes.Buffer
	if err := rrdpxml.EncodeNotification(&buf, x); err != nil {
		r.t.Fatal(err)
	}
	r.write("notification.xml", buf.Bytes())
	nb, err := irpki.MarshalNotification(b)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write("notification.bin", nb)
}

// advance publishes a new serial: a delta replacing, withdrawing and
// adding a few objects, the new snapshot and the notification.
func (r *testRepo) advance() {
	uris := r.sortedURIs()
	r.serial++
	var buf bytes.Buffer
	w, err := rrdpxml.NewWriter(&buf, rrdpxml.Header{Kind: rrdpxml.KindDelta, SessionID: r.session, Serial: r.serial})
	if err != nil {
		r.t.Fatal(err)
	}
	content := func() []byte {
		c := make([]byte, 64+r.rnd.IntN(64))
		for i := range c {
			c[i] = byte(r.rnd.Uint32())
		}
		return c
	}
	n := cmp.Or(r.changes, 8)
	picked := slices.DeleteFunc(r.rnd.Perm(len(uris))[:n], func(k int) bool { return slices.Contains(r.also, uris[k]) })
	replaced := max(5, n*5/8)
	for i, k := range picked {
		u := uris[k]
		h := sha256.Sum256(r.objs[u])
		switch {
		case i == 0 && r.overwrite:
			c := content()
			w.Publish(u, nil, c)
			r.objs[u] = c
		case i == 0 && r.badReplace:
			c := content()
			h[0] ^= 1
			w.Publish(u, &h, c)
			r.objs[u] = c
		case i < replaced:
			c := content()
			w.Publish(u, &h, c)
			r.objs[u] = c
		default:
			w.Withdraw(u, h)
			delete(r.objs, u)
		}
	}
	for _, u := range r.also {
		h := sha256.Sum256(r.objs[u])
		c := content()
		w.Publish(u, &h, c)
		r.objs[u] = c
	}
	r.also = nil
	for range 3 {
		r.added++
		u := fmt.Sprintf("rsync://rpki.example.net/repo/new/added%05d.roa", r.added)
		c := content()
		w.Publish(u, nil, c)
		r.objs[u] = c
	}
	if err := w.Close(); err != nil {
		r.t.Fatal(err)
	}
	xu, xh, bu, bh := r.put("delta", buf.Bytes())
	r.deltas = append(r.deltas, rrdpxml.DeltaRef{Serial: r.serial, URI: xu, Hash: xh})
	r.binDeltas = append(r.binDeltas, rrdpxml.DeltaRef{Serial: r.serial, URI: bu, Hash: bh})
	r.writeSnapshot()
	r.writeNotification()
}

// rollback makes the origin publish serial s again, as if restored from
// a backup: same session, its snapshot, the deltas up to s.
func (r *testRepo) rollback(s uint64) {
	r.serial = s
	r.objs = maps.Clone(r.history[s])
	r.snap, r.binSnap = r.snaps[s][0], r.snaps[s][1]
	keep := func(ds []rrdpxml.DeltaRef) []rrdpxml.DeltaRef {
		var out []rrdpxml.DeltaRef
		for _, d := range ds {
			if d.Serial <= s {
				out = append(out, d)
			}
		}
		return out
	}
	r.deltas, r.binDeltas = keep(r.deltas), keep(r.binDeltas)
	r.writeNotification()
}
