package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Validation is the node's validation of the repositories it follows
// (proxy/validate.Validator): shown at /status, /status.json and
// /metrics, its VRPs served at /vrps.json in rpki-client's JSON format, and
// its held serials released by POST /validate/release?repo=NAME on the
// admin listener (never on a public one).
type Validation interface {
	Status() *status.Validation
	WriteVRPs(w io.Writer) error
	// Release publishes the serial held for the repository called repo
	// and says what it did; an error wrapping fs.ErrNotExist means none
	// is held.
	Release(ctx context.Context, repo string) (string, error)
	prometheus.Collector
}

// releasePath is where the admin listener takes a release.
const releasePath = "/validate/release"

// releaseTimeout bounds a release: it stores a head and validates.
const releaseTimeout = 5 * time.Minute

// vrpsJSON answers /vrps.json.
func (s *Server) vrpsJSON() (int, []byte, string) {
	if s.cfg.Validation == nil {
		return fasthttp.StatusNotFound, []byte("no validation configured ([validate] tals)\n"), "text/plain; charset=utf-8"
	}
	var b bytes.Buffer
	if err := s.cfg.Validation.WriteVRPs(&b); err != nil {
		return fasthttp.StatusServiceUnavailable, []byte(err.Error() + "\n"), "text/plain; charset=utf-8"
	}
	return fasthttp.StatusOK, b.Bytes(), "application/json"
}

// serveRelease answers POST /validate/release?repo=NAME on the admin
// listener.
func (s *Server) serveRelease(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(hdrCacheControl, ccNoStore)
	ctx.SetContentType("text/plain; charset=utf-8")
	switch {
	case !ctx.IsPost():
		ctx.Error("use POST\n", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		return
	case s.cfg.Validation == nil:
		ctx.Error("no validation configured ([validate] tals)\n", fasthttp.StatusNotFound)
		return
	}
	repo := string(ctx.QueryArgs().Peek("repo"))
	if repo == "" {
		ctx.Error("which repository? ?repo=NAME\n", fasthttp.StatusBadRequest)
		return
	}
	rctx, cancel := context.WithTimeout(s.ctx, releaseTimeout)
	defer cancel()
	msg, err := s.cfg.Validation.Release(rctx, repo)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ctx.Error(err.Error()+"\n", fasthttp.StatusNotFound)
	case err != nil:
		s.log.Error("release a held serial", "repo", repo, "err", err)
		ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
	default:
		s.log.Warn("held serial released", "repo", repo, "remote", ctx.RemoteAddr().String(), "what", msg)
		ctx.SetBodyString(msg + "\n")
	}
}
