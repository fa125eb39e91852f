package proxy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/valyala/fasthttp"
)

var ccNoStore = []byte("no-store")

// serveOps answers the operator routes and reports whether p was one.
func (s *Server) serveOps(ctx *fasthttp.RequestCtx, p []byte) bool {
	var (
		body  []byte
		ctype string
	)
	code := fasthttp.StatusOK
	switch string(p) {
	case "/healthz":
		body, ctype = []byte("ok\n"), "text/plain; charset=utf-8"
	case "/readyz":
		ctype = "text/plain; charset=utf-8"
		code, body = s.readyz(ctx.QueryArgs().Peek("repo"))
	case "/metrics":
		body, ctype = s.writeMetrics()
	case "/vrps.json":
		code, body, ctype = s.vrpsJSON()
	case "/index.json":
		body, ctype = s.indexJSON(), "application/json"
	case "/status":
		var b bytes.Buffer
		if err := status.WriteHTML(&b, s.report()); err != nil {
			s.log.Error("status page", "err", err)
			code = fasthttp.StatusInternalServerError
		}
		body, ctype = b.Bytes(), "text/html; charset=utf-8"
	case "/status.json":
		var b bytes.Buffer
		if err := status.WriteJSON(&b, s.report()); err != nil {
			s.log.Error("status.json", "err", err)
			code = fasthttp.StatusInternalServerError
		}
		body, ctype = b.Bytes(), "application/json"
	default:
		return false
	}
	ctx.SetStatusCode(code)
	ctx.SetContentType(ctype)
	ctx.Response.Header.SetCanonical(hdrCacheControl, ccNoStore)
	ctx.Response.SetBodyRaw(body)
	n := len(body)
	if ctx.IsHead() {
		n = 0
	}
	s.other.count(kindOther, formatXML, code, n)
	return true
}

// opsPaths are the operator pages that Config.AdminOnly moves to the
// admin listener. /index.json stays public: it lists the repositories for
// relying parties and mirrors.
var opsPaths = []string{"/healthz", "/readyz", "/metrics", "/status", "/status.json", "/vrps.json"}

func isOpsPath(p []byte) bool {
	for _, o := range opsPaths {
		if string(p) == o {
			return true
		}
	}
	return false
}

// readyz answers /readyz, or /readyz?repo=NAME for one repository.
//
// One repository is ready when it has a verified state to serve. The
// node is ready unless it is still starting: a repository without a
// state whose first poll has not ended yet, within StartupGrace of the
// start, keeps it unready, and so does Shutdown once begun. A repository whose origin fails (its first
// poll ended in an error) does not: in a mirror of 90 repositories one
// dead origin must not take the node out of its load balancer, and every
// node would fail it alike. The body lists the repositories without a
// state either way, and /status says why.
func (s *Server) readyz(repo []byte) (int, []byte) {
	t := s.tab.Load()
	if len(repo) > 0 {
		for _, r := range t.repos {
			if r.cfg.Name != string(repo) {
				continue
			}
			if s.cfg.Cache.Head(r.cfg.Key) != nil {
				return fasthttp.StatusOK, []byte("ready\n")
			}
			why := "no verified state yet"
			if st, ok := r.followStats(); ok && st.LastErr != "" {
				why += ": " + st.LastErr
			}
			return fasthttp.StatusServiceUnavailable, []byte(why + "\n")
		}
		return fasthttp.StatusNotFound, []byte("no repository " + strconv.Quote(string(repo)) + "\n")
	}
	s.pullMu.Lock()
	draining := s.closed
	s.pullMu.Unlock()
	if draining {
		// Out of the load balancer during the drain.
		return fasthttp.StatusServiceUnavailable, []byte("shutting down\n")
	}
	starting, failing := s.notReady()
	var b strings.Builder
	code := fasthttp.StatusOK
	if len(starting) > 0 {
		code = fasthttp.StatusServiceUnavailable
		b.WriteString("starting: no verified state yet: " + strings.Join(starting, ", ") + "\n")
	} else {
		b.WriteString("ready\n")
	}
	if len(failing) > 0 {
		b.WriteString("without a state, origin failing: " + strings.Join(failing, ", ") + "\n")
	}
	return code, []byte(b.String())
}

// notReady returns the repositories without a head: those still
// starting, and those whose origin failed their first poll (or that have
// been without a state for StartupGrace).
func (s *Server) notReady() (starting, failing []string) {
	grace := s.cfg.Now().Sub(s.started) >= s.cfg.StartupGrace
	for _, r := range s.tab.Load().repos {
		if s.cfg.Cache.Head(r.cfg.Key) != nil {
			continue
		}
		// An origin that never answered well (errors and no success
		// yet) fails; a fleet node's Stats are the holder's, so errors
		// of a holder that has synced before mean a head is coming.
		st, ok := r.followStats()
		if grace || ok && st.Errors > 0 && st.LastSuccess.IsZero() {
			failing = append(failing, r.cfg.Name)
		} else {
			starting = append(starting, r.cfg.Name)
		}
	}
	return starting, failing
}

// IndexEntry is one repository in /index.json.
type IndexEntry struct {
	Name string `json:"name"`
	Mode Mode   `json:"mode"`
	// Origin is the origin's notification URL; NotificationXML and
	// NotificationBin are this node's.
	Origin          string `json:"origin"`
	NotificationXML string `json:"notification_xml"`
	NotificationBin string `json:"notification_bin"`
	Serial          uint64 `json:"serial,omitempty"`
	Session         string `json:"session,omitempty"`
}

func (s *Server) indexJSON() []byte {
	var list []IndexEntry
	for _, r := range s.tab.Load().repos {
		e := IndexEntry{Name: r.cfg.Name, Mode: r.cfg.Mode, Origin: r.cfg.Origin,
			NotificationXML: r.cfg.Base + "notification.xml", NotificationBin: r.cfg.Base + "notification.bin"}
		if h := s.cfg.Cache.Head(r.cfg.Key); h != nil {
			e.Serial, e.Session = h.Serial, h.Session
		}
		list = append(list, e)
	}
	b, err := json.MarshalIndent(struct {
		Repos []IndexEntry `json:"repositories"`
	}{list}, "", "  ")
	if err != nil {
		return nil
	}
	return append(b, '\n')
}
