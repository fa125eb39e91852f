package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/rp"
)

// followOrigin is the HTTPS origin of bench follow on 127.0.0.1: the
// notification from memory (each response recorded with its serial), the
// other files from a directory, and faults on chosen paths.
type followOrigin struct {
	dir string
	srv *http.Server
	url string // https://localhost:PORT/
	wg  sync.WaitGroup

	mu     sync.Mutex
	notif  []byte
	serial uint64
	polls  []originPoll
	faults map[string]http.HandlerFunc
	done   map[string]int // fault responses finished, per path
}

// originPoll is one notification response: when and which serial.
type originPoll struct {
	at     time.Time
	serial uint64
}

// startFollowOrigin serves dir over HTTPS with pki's certificate.
func startFollowOrigin(dir string, pki *rp.PKI) (*followOrigin, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start origin: %w", err)
	}
	o := &followOrigin{dir: dir, faults: map[string]http.HandlerFunc{}, done: map[string]int{},
		url: fmt.Sprintf("https://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)}
	o.srv = &http.Server{Handler: o, TLSConfig: pki.ServerTLS(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	o.wg.Go(func() { o.srv.ServeTLS(ln, "", "") })
	return o, nil
}

// Close stops the origin: connections are refused from then on.
func (o *followOrigin) Close() {
	o.srv.Close()
	o.wg.Wait()
}

// publish makes b, of serial, the notification, and returns the time.
func (o *followOrigin) publish(b []byte, serial uint64) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notif, o.serial = b, serial
	return time.Now()
}

// current returns the notification the origin serves now.
func (o *followOrigin) current() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notif
}

// firstPoll returns the time of the first response with serial (zero if
// none yet).
func (o *followOrigin) firstPoll(serial uint64) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.polls {
		if p.serial == serial {
			return p.at
		}
	}
	return time.Time{}
}

// setFault answers requests for the URL path p with h until clearFaults.
func (o *followOrigin) setFault(p string, h http.HandlerFunc) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.faults[p] = h
}

func (o *followOrigin) clearFaults() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.faults)
}

// faultsDone returns how many responses of the fault at p finished.
func (o *followOrigin) faultsDone(p string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done[p]
}

func (o *followOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	o.mu.Lock()
	fault := o.faults[p]
	notif, serial := o.notif, o.serial
	if p == "/rrdp/notification.xml" {
		o.polls = append(o.polls, originPoll{time.Now(), serial})
	}
	o.mu.Unlock()
	switch {
	case fault != nil:
		fault(w, r)
		o.mu.Lock()
		o.done[p]++
		o.mu.Unlock()
	case p == "/rrdp/notification.xml":
		// No Last-Modified: a notification may change twice within a
		// second, which If-Modified-Since cannot tell.
		sum := sha256.Sum256(notif)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		w.Header().Set("Content-Type", "application/xml")
		http.ServeContent(w, r, "notification.xml", time.Time{}, bytes.NewReader(notif))
	default:
		f, err := os.Open(filepath.Join(o.dir, filepath.FromSlash(p)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	}
}

// gzipBomb returns a gzip member whose content is an RRDP snapshot's
// start tag followed by spaces, size bytes in all: a few MB on the wire
// for gigabytes decoded.
func gzipBomb(session string, serial uint64, size int64) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf(`<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="%s" serial="%d">`, session, serial)
	zw.Write([]byte(head))
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for left := size - int64(len(head)); left > 0; left -= int64(len(spaces)) {
		if _, err := zw.Write(spaces[:min(int64(len(spaces)), left)]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// bombHandler sends bomb with Content-Encoding: gzip.
func bombHandler(bomb []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", fmt.Sprint(len(bomb)))
		w.Write(bomb)
	}
}

// hugeHandler sends size bytes of a snapshot's start tag and spaces, with
// their Content-Length (whose hash cannot be the notification's).
func hugeHandler(session string, serial uint64, size int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		head := fmt.Sprintf(`<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="%s" serial="%d">`, session, serial)
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		if _, err := io.WriteString(w, head); err != nil {
			return
		}
		spaces := bytes.Repeat([]byte(" "), 1<<20)
		for left := size - int64(len(head)); left > 0; left -= int64(len(spaces)) {
			if _, err := w.Write(spaces[:min(int64(len(spaces)), left)]); err != nil {
				return
			}
		}
	}
}
