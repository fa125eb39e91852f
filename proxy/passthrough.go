package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/irpki/rrdp-proxy/proxy/upstream"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Pass-through of a reverse repository's host: the files on the
// repository's host names that are not RRDP files (the TA certificate a
// TAL points at, robots.txt, a landing page) are fetched from the origin's
// host on demand (through fetch_from), GET and HEAD only, for the hosts
// configured only, and cached with HTTP semantics: the origin's max-age
// (60s when it gives none; nothing kept for no-store or private), then
// revalidated with If-None-Match and If-Modified-Since; on an origin
// failure a copy up to StaleIfError old is served. Bodies are capped at
// Repo.PassthroughMax; a repository keeps at most passMaxFiles of them and
// passMaxBytes in all, the oldest dropped first.
const (
	passDefaultAge = time.Minute
	passMaxFiles   = 1024
	passMaxBytes   = 64 << 20
	// passMaxDefault caps one body when Repo.PassthroughMax is zero.
	passMaxDefault = 16 << 20
)

// passFile is a copy of a file of the origin's host.
type passFile struct {
	body              []byte
	ctype             string
	etag              string // the origin's, or one of ours from the hash
	originETag        string // the origin's, for revalidation
	lastMod           string
	fetched, freshTil time.Time
	store             bool // the origin lets caches keep it (not no-store, not private)
}

// passCall is one fetch of a path, shared by the requests that wait.
type passCall struct {
	done chan struct{}
	f    *passFile
	err  error
}

// passCache is a repository's pass-through state.
type passCache struct {
	mu    sync.Mutex
	files map[string]*passFile
	order []string // paths by fetch time, oldest first
	bytes int
	calls map[string]*passCall
}

// get returns the file at path, from the cache while fresh, else fetched
// or revalidated (once for all the requests asking at the same time).
func (s *Server) passGet(ctx context.Context, r *repo, path string) (*passFile, error) {
	pc := &r.pass
	now := s.cfg.Now()
	pc.mu.Lock()
	f := pc.files[path]
	if f != nil && now.Before(f.freshTil) {
		pc.mu.Unlock()
		r.m.passHits.Add(1)
		return f, nil
	}
	c := pc.calls[path]
	if c == nil {
		if !s.startPull() {
			pc.mu.Unlock()
			return nil, fmt.Errorf("pass-through %s: %w", path, context.Canceled)
		}
		if pc.calls == nil {
			pc.calls = map[string]*passCall{}
		}
		c = &passCall{done: make(chan struct{})}
		pc.calls[path] = c
		go func() {
			defer s.pulls.Done()
			c.f, c.err = s.passFetch(r, path, f)
			pc.mu.Lock()
			delete(pc.calls, path)
			pc.mu.Unlock()
			close(c.done)
		}()
	}
	pc.mu.Unlock()
	select {
	case <-c.done:
		return c.f, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("pass-through %s: %w", path, ctx.Err())
	}
}

// passFetch fetches path from the origin's host, revalidating old if
// set, and keeps the result as the cache allows.
func (s *Server) passFetch(r *repo, path string, old *passFile) (*passFile, error) {
	client := pullClient(s, r)
	uri := r.originHost + path
	req := upstream.Request{URL: uri, Kind: rrdpxml.KindNotification}
	if old != nil {
		req.ETag, req.LastModified = old.originETag, old.lastMod
	}
	r.m.passFetches.Add(1)
	f, err := s.passRead(client, req, old, r.passMax())
	now := s.cfg.Now()
	if err != nil {
		r.m.passErrors.Add(1)
		var st *upstream.StatusError
		gone := errors.As(err, &st) && (st.Code == 404 || st.Code == 410)
		if old != nil && !gone && now.Sub(old.fetched) < s.cfg.StaleIfError {
			s.log.Warn("pass-through: the origin failed, serving the copy in hand", "repo", r.cfg.Name, "uri", uri, "age", now.Sub(old.fetched).String(), "err", err)
			return old, nil
		}
		if gone {
			r.pass.drop(path)
		}
		return nil, fmt.Errorf("pass-through %s: %w", uri, err)
	}
	if f.store {
		r.pass.keep(path, f)
	}
	return f, nil
}

// passRead makes one request and returns the file, old refreshed on a
// 304, or an error. A response the origin marks no-store or private is
// returned with a zero freshTil and not kept.
func (s *Server) passRead(client *upstream.Client, req upstream.Request, old *passFile, max int64) (*passFile, error) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	resp, err := client.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	now := s.cfg.Now()
	age, store := maxAge(resp.CacheControl)
	if resp.Status == 304 && old != nil {
		f := *old
		f.fetched, f.freshTil, f.store = now, now.Add(age), store
		return &f, nil
	}
	if resp.Body == nil {
		return nil, fmt.Errorf("%s: status %d without a copy to revalidate: %w", req.URL, resp.Status, upstream.ErrStatus)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: body over the pass-through cap of %d bytes: %w", req.URL, max, upstream.ErrTooLarge)
	}
	f := &passFile{body: b, ctype: resp.ContentType, originETag: resp.ETag, lastMod: resp.LastModified, fetched: now}
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	f.etag = resp.ETag
	if f.etag == "" || strings.HasPrefix(f.etag, "W/") {
		sum := sha256.Sum256(b)
		f.etag = string(newVariant(sum, 0, nil).etag)
	}
	if f.store = store; store {
		f.freshTil = now.Add(age)
	}
	return f, nil
}

// maxAge reads a Cache-Control header: the freshness lifetime it gives
// (passDefaultAge without max-age, zero for no-cache), and whether the
// response may be kept at all (not no-store or private).
func maxAge(cc string) (time.Duration, bool) {
	age := passDefaultAge
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store", d == "private":
			return 0, false
		case d == "no-cache":
			age = 0
		case strings.HasPrefix(d, "s-maxage="), strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(d[strings.IndexByte(d, '=')+1:]); err == nil && n >= 0 {
				age = time.Duration(n) * time.Second
			}
		}
	}
	return age, true
}

// keep stores f at path, dropping the oldest files over the caps.
func (pc *passCache) keep(path string, f *passFile) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.files == nil {
		pc.files = map[string]*passFile{}
	}
	if old := pc.files[path]; old != nil {
		pc.bytes -= len(old.body)
		pc.order = slices.DeleteFunc(pc.order, func(p string) bool { return p == path })
	}
	pc.files[path] = f
	pc.order = append(pc.order, path)
	pc.bytes += len(f.body)
	for len(pc.order) > 1 && (len(pc.order) > passMaxFiles || pc.bytes > passMaxBytes) {
		p := pc.order[0]
		pc.order = pc.order[1:]
		pc.bytes -= len(pc.files[p].body)
		delete(pc.files, p)
	}
}

func (pc *passCache) drop(path string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if f := pc.files[path]; f != nil {
		pc.bytes -= len(f.body)
		delete(pc.files, path)
		pc.order = slices.DeleteFunc(pc.order, func(p string) bool { return p == path })
	}
}

// servePass answers a request for a path of a reverse repository's host
// that is not one of its RRDP files.
func (s *Server) servePass(ctx *fasthttp.RequestCtx, r *repo, path []byte) {
	if !passable(path) || !r.passAllowed(path) || pullClient(s, r) == nil {
		answer404(ctx)
		r.m.count(kindOther, formatXML, fasthttp.StatusNotFound, 0)
		return
	}
	wait, cancel := context.WithTimeout(s.ctx, s.cfg.PullWait)
	f, err := s.passGet(wait, r, string(path))
	cancel()
	if err != nil {
		var st *upstream.StatusError
		status := fasthttp.StatusBadGateway
		switch {
		case errors.As(err, &st) && (st.Code == 404 || st.Code == 410):
			status = fasthttp.StatusNotFound
		case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			status = fasthttp.StatusGatewayTimeout
		case errors.Is(err, context.Canceled):
			status = fasthttp.StatusServiceUnavailable
		}
		if status != fasthttp.StatusNotFound {
			s.log.Warn("pass-through failed", "repo", r.cfg.Name, "path", string(path), "err", err)
		}
		ctx.Error(fasthttp.StatusMessage(status)+"\n", status)
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		r.m.count(kindOther, formatXML, status, 0)
		return
	}
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderContentType, f.ctype)
	h.Set(fasthttp.HeaderETag, f.etag)
	if f.lastMod != "" {
		h.Set(fasthttp.HeaderLastModified, f.lastMod)
	}
	maxAge := int(f.freshTil.Sub(s.cfg.Now()).Seconds())
	if maxAge < 0 {
		maxAge = 0
	}
	if f.store {
		h.Set(fasthttp.HeaderCacheControl, "public, max-age="+strconv.Itoa(maxAge))
	} else {
		h.Set(fasthttp.HeaderCacheControl, "no-store") // as the origin said
	}
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 {
		if etagMatch(inm, []byte(f.etag), true) { // f.etag is strong (passRead)
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			r.m.count(kindOther, formatXML, fasthttp.StatusNotModified, 0)
			return
		}
	} else if ims := ctx.Request.Header.Peek(fasthttp.HeaderIfModifiedSince); len(ims) > 0 && f.lastMod != "" && string(ims) == f.lastMod {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		r.m.count(kindOther, formatXML, fasthttp.StatusNotModified, 0)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	n := len(f.body)
	if ctx.IsHead() {
		ctx.Response.SkipBody = true
		ctx.Response.Header.SetContentLength(n)
		n = 0
	} else {
		ctx.SetBody(f.body)
	}
	r.m.count(kindOther, formatXML, fasthttp.StatusOK, n)
}

// passable reports whether a request path, as fasthttp decoded it, may
// be passed through: no query or fragment smuggled in percent-encoded
// ("%3F", "%23"), no control character, no dot segment, and not an RRDP
// name (".xml", ".bin"), which is served only from the verified state.
func passable(path []byte) bool {
	if len(path) == 0 || path[0] != '/' || isRRDPName(path) {
		return false
	}
	for _, c := range path {
		if c < 0x20 || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return false
		}
	}
	return !bytes.Contains(path, []byte("/../")) && !bytes.HasSuffix(path, []byte("/..")) &&
		!bytes.Contains(path, []byte("/./")) && !bytes.Contains(path, []byte("//"))
}

// passAllowed reports whether path is one of Repo.PassthroughPaths: an
// entry ending in '/' is a prefix (except "/" alone, the landing page),
// any other entry an exact path.
func (r *repo) passAllowed(path []byte) bool {
	for _, p := range r.cfg.PassthroughPaths {
		if string(path) == p || p != "/" && strings.HasSuffix(p, "/") && bytes.HasPrefix(path, []byte(p)) {
			return true
		}
	}
	return false
}

func (r *repo) passMax() int64 {
	if r.cfg.PassthroughMax > 0 {
		return r.cfg.PassthroughMax
	}
	return passMaxDefault
}
