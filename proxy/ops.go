package proxy

import (
	"bytes"
	"encoding/json"
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
		if missing := s.notReady(); len(missing) > 0 {
			code = fasthttp.StatusServiceUnavailable
			body = []byte("no verified state yet: " + strings.Join(missing, ", ") + "\n")
		} else {
			body = []byte("ready\n")
		}
	case "/metrics":
		body, ctype = s.writeMetrics()
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
var opsPaths = []string{"/healthz", "/readyz", "/metrics", "/status", "/status.json"}

func isOpsPath(p []byte) bool {
	for _, o := range opsPaths {
		if string(p) == o {
			return true
		}
	}
	return false
}

// notReady returns the repositories without a head.
func (s *Server) notReady() []string {
	var missing []string
	for _, r := range s.tab.Load().repos {
		if s.cfg.Cache.Head(r.cfg.Key) == nil {
			missing = append(missing, r.cfg.Name)
		}
	}
	return missing
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
