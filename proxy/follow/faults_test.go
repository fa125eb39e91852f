package follow

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// faultOrigin is an HTTPS origin on 127.0.0.1 serving a directory, that
// can be told to misbehave for some of its files, or to stop listening.
type faultOrigin struct {
	dir  string
	tls  *tls.Config
	ca   []byte // PEM of the CA that signed the server's certificate
	port int

	mu    sync.Mutex
	srv   *http.Server
	done  chan struct{} // closed when srv stops: ends hanging handlers
	fault func(w http.ResponseWriter, r *http.Request) bool
}

func newFaultOrigin(t *testing.T, dir string) *faultOrigin {
	t.Helper()
	pki, err := rp.NewPKI(t.TempDir(), rp.PKIConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	o := &faultOrigin{dir: dir, tls: pki.ServerTLS(), ca: ca}
	if err := o.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.stop)
	return o
}

func (o *faultOrigin) URL() string { return "https://localhost:" + strconv.Itoa(o.port) + "/" }

// start listens (again, on the same port after stop).
func (o *faultOrigin) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.port))
	if err != nil {
		return err
	}
	o.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	o.mu.Lock()
	o.srv, o.done = srv, make(chan struct{})
	o.mu.Unlock()
	go srv.Serve(tls.NewListener(ln, o.tls))
	return nil
}

// stop closes the listener and every connection.
func (o *faultOrigin) stop() {
	o.mu.Lock()
	srv, done := o.srv, o.done
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		close(done)
		srv.Close()
	}
}

func (o *faultOrigin) setFault(fn func(w http.ResponseWriter, r *http.Request) bool) {
	o.mu.Lock()
	o.fault = fn
	o.mu.Unlock()
}

// kind names the kind of file a path is: notification, snapshot, delta.
func kindOf(p string) string {
	base := path.Base(p)
	return strings.TrimSuffix(base, path.Ext(base))
}

func (o *faultOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	fault, done := o.fault, o.done
	o.mu.Unlock()
	if fault != nil {
		r = r.WithContext(withDone(r.Context(), done))
		if fault(w, r) {
			return
		}
	}
	fh, err := os.Open(path.Join(o.dir, path.Clean("/"+r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer fh.Close()
	if kindOf(r.URL.Path) == "notification" {
		// Only the notification is fetched conditionally.
		b, err := io.ReadAll(fh)
		if err != nil {
			http.Error(w, "read error", 500)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		return
	}
	http.ServeContent(w, r, "", time.Time{}, fh)
}

// withDone returns ctx, also ended when done closes.
func withDone(ctx context.Context, done chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx
}

// on returns a fault that calls fn for the files of the given kinds.
func on(fn func(w http.ResponseWriter, r *http.Request), kinds ...string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		for _, k := range kinds {
			if kindOf(r.URL.Path) == k {
				fn(w, r)
				return true
			}
		}
		return false
	}
}

func status503(w http.ResponseWriter, _ *http.Request) { http.Error(w, "overloaded", 503) }

// file returns the bytes of the file r asks for.
func (o *faultOrigin) file(r *http.Request) []byte {
	b, _ := os.ReadFile(path.Join(o.dir, path.Clean("/"+r.URL.Path)))
	return b
}

type faultEnv struct {
	*env
	fo *faultOrigin
	f  *Follower
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	dir := t.TempDir()
	fo := newFaultOrigin(t, dir)
	c, err := upstream.New(upstream.Config{
		CAPEM: fo.ca, HeaderTimeout: 300 * time.Millisecond, NotificationTimeout: 5 * time.Second,
		MinRate: 4 << 10, RateWindow: 200 * time.Millisecond,
		MaxNotificationSize: 1 << 20, MaxDeltaSize: 1 << 20, MaxSnapshotSize: 8 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &env{t: t, repo: newTestRepo(t, dir, fo.URL(), 1), client: c, store: NewMemStore(),
		log: &syncBuffer{}, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &faultEnv{env: e, fo: fo}
}

// TestFailureMatrix runs every way an origin fails against a follower at
// serial 1 while the origin has moved to serial 2 or further. For each:
// the error is counted by kind; a failed sync leaves the last good state
// published and unchanged; once the origin heals, Run brings the follower
// to the origin's state by itself.
func TestFailureMatrix(t *testing.T) {
	type tc struct {
		name    string
		fault   func(e *faultEnv) // after serial 1 was taken
		failed  bool              // the sync fails (else it falls back and succeeds)
		counter func(s Stats) uint64
		heal    func(e *faultEnv)
	}
	flip := func(fo *faultOrigin) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			b := fo.file(r)
			b[len(b)/2] ^= 1
			w.Write(b)
		}
	}
	cases := []tc{
		{"connection refused", func(e *faultEnv) { e.repo.advance(); e.fo.stop() }, true,
			func(s Stats) uint64 { return s.Unreachable }, func(e *faultEnv) {
				if err := e.fo.start(); err != nil {
					t.Fatal(err)
				}
			}},
		{"timeout: no headers", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "notification"))
		}, true, func(s Stats) uint64 { return s.Timeouts }, nil},
		{"5xx", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(status503, "notification"))
		}, true, func(s Stats) uint64 { return s.HTTPStatus }, nil},
		{"truncated delta and snapshot", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
				b := e.fo.file(r)
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				w.Write(b[:len(b)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}, "delta", "snapshot"))
		}, true, func(s Stats) uint64 { return s.Truncated / 2 }, nil}, // delta and snapshot
		{"snapshot hash mismatch", func(e *faultEnv) {
			e.repo.reset(99)
			e.fo.setFault(on(flip(e.fo), "snapshot"))
		}, true, func(s Stats) uint64 { return s.HashMismatches }, nil},
		{"delta hash mismatch", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(flip(e.fo), "delta", "snapshot"))
		}, true, func(s Stats) uint64 { return s.HashMismatches }, nil},
		{"broken XML in a delta, snapshot down", func(e *faultEnv) {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			broken := []byte(`<delta xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + e.repo.session + `" serial="2"><publish uri="rsync://a/b.roa">AAAA</publish`)
			e.repo.write("broken-delta.xml", broken)
			x.Deltas[len(x.Deltas)-1].URI = e.repo.base + "broken-delta.xml"
			x.Deltas[len(x.Deltas)-1].Hash = sha256.Sum256(broken)
			e.repo.writeNotifications(x, b)
			e.fo.setFault(on(status503, "snapshot"))
		}, true, func(s Stats) uint64 { return s.Invalid }, nil},
		{"broken XML in a delta", func(e *faultEnv) {
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			broken := []byte(`<delta xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + e.repo.session + `" serial="2"><<publish/></delta>`)
			e.repo.write("broken-delta.xml", broken)
			x.Deltas[len(x.Deltas)-1].URI = e.repo.base + "broken-delta.xml"
			x.Deltas[len(x.Deltas)-1].Hash = sha256.Sum256(broken)
			e.repo.writeNotifications(x, b)
		}, false, func(s Stats) uint64 { return s.Invalid * s.DeltaFailures }, nil},
		{"gap in the deltas, snapshot down", func(e *faultEnv) {
			e.repo.advance()
			e.repo.advance()
			x, b := e.repo.notification(false), e.repo.notification(true)
			x.Deltas, b.Deltas = x.Deltas[1:], b.Deltas[1:]
			e.repo.writeNotifications(x, b)
			e.fo.setFault(on(status503, "snapshot"))
		}, true, func(s Stats) uint64 { return s.Invalid * s.DeltaFailures }, nil},
		{"session reset", func(e *faultEnv) { e.repo.reset(99) }, false,
			func(s Stats) uint64 { return s.Snapshots - 1 }, nil},
		{"serial goes backwards", func(e *faultEnv) {
			e.repo.advance()
			e.sync(e.f) // serial 2
			e.repo.rollback(1)
		}, false, func(s Stats) uint64 { return s.Backwards * s.Resets }, nil},
		{"changed delta hash", func(e *faultEnv) {
			e.repo.advance()
			e.sync(e.f) // serial 2, delta 2 seen
			e.repo.rollback(1)
			e.repo.advance() // another delta 2
			e.repo.advance()
		}, false, func(s Stats) uint64 { return s.Desyncs * s.Resets }, nil},
		{"gzip bomb", func(e *faultEnv) {
			e.repo.advance()
			var bomb bytes.Buffer
			zw := gzip.NewWriter(&bomb)
			zw.Write(make([]byte, 8<<20))
			zw.Close()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(bomb.Bytes())
			}, "notification"))
		}, true, func(s Stats) uint64 { return s.TooLarge }, nil},
		{"slow body", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
				b := e.fo.file(r)
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				for _, c := range b {
					w.Write([]byte{c})
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}, "notification"))
		}, true, func(s Stats) uint64 { return s.Timeouts }, nil},
		{"huge body", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
				chunk := bytes.Repeat([]byte("<!-- -->"), 8<<10)
				for range 2 << 20 / len(chunk) * 2 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}, "notification"))
		}, true, func(s Stats) uint64 { return s.TooLarge }, nil},
		{"redirect to another host", func(e *faultEnv) {
			e.repo.advance()
			e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://127.0.0.2:"+strconv.Itoa(e.fo.port)+r.URL.Path, http.StatusFound)
			}, "notification"))
		}, true, func(s Stats) uint64 { return s.Redirects }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newFaultEnv(t)
			f := e.follower("notification.xml")
			e.f = f
			e.sync(f)
			before := f.Head()
			want := e.repo.history[1]
			c.fault(e)
			_, err := f.Sync(context.Background())
			s := f.Stats()
			if got := c.counter(s); got == 0 {
				t.Errorf("the failure was not counted by its kind: %+v", s)
			}
			if c.failed {
				if err == nil {
					t.Fatal("the sync succeeded, want an error")
				}
				if s.Errors != 1 || s.Serial != 1 {
					t.Errorf("got %d errors at serial %d, want 1 at serial 1", s.Errors, s.Serial)
				}
				if f.Head() != before || e.store.Head(f.cfg.Repo) != before {
					t.Error("the head changed after a failed sync")
				}
				n := 0
				f.WalkObjects(func(u string, c []byte) error {
					if !bytes.Equal(want[u], c) {
						t.Errorf("object %s changed", u)
					}
					n++
					return nil
				})
				if n != len(want) {
					t.Errorf("got %d objects, want %d", n, len(want))
				}
				checkHead(t, e.store, f.Head(), f.cfg.Base)
			} else if err != nil {
				t.Fatalf("sync: %v", err)
			}
			t.Logf("%v; stats %+v; log:\n%s", err, s, e.log.String())

			// The origin heals; Run catches up by itself.
			e.fo.setFault(nil)
			if c.heal != nil {
				c.heal(e)
			}
			runUntil(t, f, e.repo.session, e.repo.serial)
			checkState(t, f, e.repo)
		})
	}
}

// runUntil runs f until its head reaches serial, or fails after a while.
func runUntil(t *testing.T, f *Follower, session string, serial uint64) {
	t.Helper()
	f.cfg.Interval, f.cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if h := f.Head(); h != nil && h.Session == session && h.Serial == serial {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery to serial %d: %+v", serial, f.Stats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// heldStore holds every head back after the first, as the validation
// gate does (ErrHeld).
type heldStore struct {
	*MemStore
	heads int
}

func (s *heldStore) PutHead(ctx context.Context, repo string, h *Head) error {
	if s.heads++; s.heads > 1 {
		return fmt.Errorf("serial %d: %w", h.Serial, ErrHeld)
	}
	return s.MemStore.PutHead(ctx, repo, h)
}

// TestHeld: a head the store holds back keeps the old one, counts as
// held (not a store failure), and makes the follower not fall back to the
// snapshot.
func TestHeld(t *testing.T) {
	e := newEnv(t)
	st := &heldStore{MemStore: NewMemStore()}
	f, err := New(Config{URL: e.repo.base + "notification.xml", Client: e.client, Store: st, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.sync(f)
	if err := e.origin.Reset(); err != nil {
		t.Fatal(err)
	}
	e.repo.advance()
	if _, err := f.Sync(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("sync of a held serial: %v, want ErrHeld", err)
	}
	if s := f.Stats(); s.Held != 1 || s.StoreFailures != 0 || s.DeltaFailures != 0 || f.Head().Serial != 1 {
		t.Errorf("got %d held, %d store failures, %d delta failures, serial %d; want 1, 0, 0, 1", s.Held, s.StoreFailures, s.DeltaFailures, f.Head().Serial)
	}
	if n := e.snapshotFetches(); n != 0 {
		t.Errorf("snapshot fetched %d times for a held serial, want 0", n)
	}
	first := f.Stats().Holding
	if first.Serial != 2 || first.Session != f.Head().Session || !first.Since.Equal(e.now) || !strings.Contains(first.Err, "serial 2") {
		t.Errorf("holding: got %+v, want serial 2 of session %s since %v with the store's error", first, f.Head().Session, e.now)
	}
	// Another attempt at the same serial keeps the time it was first held.
	e.now = e.now.Add(time.Minute)
	if _, err := f.Sync(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("second sync of a held serial: %v, want ErrHeld", err)
	}
	if got := f.Stats().Holding; got.Serial != 2 || !got.Since.Equal(first.Since) {
		t.Errorf("holding after a second attempt: got %+v, want serial 2 since %v", got, first.Since)
	}
	st.heads = 0 // the next head passes
	if _, err := f.Sync(context.Background()); err != nil {
		t.Fatalf("sync once the store takes the serial: %v", err)
	}
	if got := f.Stats().Holding; got != (Holding{}) || f.Head().Serial != 2 {
		t.Errorf("after publishing serial %d: holding %+v, want none", f.Head().Serial, got)
	}
}

// TestSnapshotFetchClosed: closing a snapshot fetch under way (a
// transparent sync that failed for a reason the snapshot cannot mend)
// stops its download, rather than wait for the whole snapshot from the
// origin at every poll.
func TestSnapshotFetchClosed(t *testing.T) {
	e := newFaultEnv(t)
	f := e.transparentWith("", nil, 1)
	started, ended := make(chan struct{}), make(chan struct{})
	e.fo.setFault(on(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		// No length (a length over the cap is refused at once), 40 KiB/s:
		// above the client's MinRate and below its size cap for minutes,
		// so only a cancel ends it within the sync's minute.
		chunk := bytes.Repeat([]byte("x"), 8<<10)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if i == 0 {
				close(started)
			}
			select {
			case <-r.Context().Done():
				return // the client went
			case <-t.C:
			}
		}
	}, "snapshot"))
	n := &rrdpxml.Notification{Snapshot: rrdpxml.SnapshotRef{URI: e.repo.base + "snapshot.xml"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := f.startSnapshot(ctx, n)
	<-started
	s.close()
	if ctx.Err() != nil {
		t.Fatalf("close returned only when the sync's context ended: %v", ctx.Err())
	}
	<-ended
	if _, err := s.wait(); err == nil {
		t.Error("a snapshot fetch closed midway: got no error")
	}
}
