package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/irpki/rrdp-proxy/cache"
)

// Content types. RFC 8182 registers no media type for RRDP files; they are
// XML documents in UTF-8, for which RFC 7303 recommends application/xml
// over text/xml (whose charset defaults confuse). The iRPKI .bin files are
// protobuf messages without a registered type either; a vendor type would
// need a registration (RFC 6838) and application/x-protobuf is not one, so
// they are application/octet-stream, which every client accepts.
var (
	ctypeXML = []byte("application/xml")
	ctypeBin = []byte("application/octet-stream")

	hdrETag         = []byte("ETag")
	hdrLastModified = []byte("Last-Modified")
	hdrCacheControl = []byte("Cache-Control")
	hdrVary         = []byte("Vary")
	hdrAcceptRanges = []byte("Accept-Ranges")
	hdrContentRange = []byte("Content-Range")
	hdrAllow        = []byte("Allow")

	// Request header names in fasthttp's normalised form, for
	// PeekCanonical: the server parses names into that form
	// (Server.DisableHeaderNamesNormalizing stays false), and Peek would
	// copy and normalise the name on every call.
	keyAcceptEncoding  = []byte(fasthttp.HeaderAcceptEncoding)
	keyIfNoneMatch     = []byte(fasthttp.HeaderIfNoneMatch)
	keyIfModifiedSince = []byte(fasthttp.HeaderIfModifiedSince)
	keyRange           = []byte(fasthttp.HeaderRange)
	keyIfRange         = []byte(fasthttp.HeaderIfRange)

	valAcceptEncoding = []byte("Accept-Encoding")
	valBytes          = []byte("bytes")
	valGzip           = []byte("gzip")
	valAllow          = []byte("GET, HEAD")
	// Snapshots and deltas are immutable: their paths carry the session,
	// the serial and the hash (DESIGN.md, invariant 2).
	ccImmutable = []byte("public, max-age=31536000, immutable")
	// A pulled file is vouched for by the origin's notification at the
	// time of the fetch only.
	ccPulled = []byte("public, max-age=86400")
)

// cacheControl formats the Cache-Control of notifications: short, and
// usable when this node fails (RFC 5861).
func cacheControl(maxAge, staleIfError time.Duration) []byte {
	return []byte("public, max-age=" + strconv.Itoa(int(maxAge/time.Second)) +
		", stale-if-error=" + strconv.Itoa(int(staleIfError/time.Second)))
}

// serveEntry answers a GET or HEAD for e with the semantics of RFC 9110:
// conditional requests, one byte range, gzip when a copy exists. body
// returns the bytes of a variant that has none of its own. It returns the
// status and the body bytes sent, or the error of body. The parts of a
// composite file (always the cache's) are read with s.blob.
func (s *Server) serveEntry(ctx *fasthttp.RequestCtx, e *entry, cc []byte, body func(context.Context, [32]byte) ([]byte, error)) (int, int, error) {
	req, h := &ctx.Request.Header, &ctx.Response.Header
	v := &e.plain
	if e.hasGz && acceptsGzip(req.PeekCanonical(keyAcceptEncoding)) {
		v = &e.gz
		h.SetContentEncodingBytes(valGzip)
	}
	if e.format != formatXML {
		h.SetContentTypeBytes(ctypeBin)
	} else {
		h.SetContentTypeBytes(ctypeXML)
	}
	h.SetCanonical(hdrETag, v.etag)
	h.SetCanonical(hdrLastModified, e.lastMod)
	h.SetCanonical(hdrCacheControl, cc)
	h.SetCanonical(hdrVary, valAcceptEncoding)
	h.SetCanonical(hdrAcceptRanges, valBytes)

	if notModified(req, v.etag, e.mod) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return fasthttp.StatusNotModified, 0, nil
	}
	var b []byte
	var parts []cache.Part
	// release ends the hold on a retained composite file: the body
	// stream takes it over, and every other return makes it.
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	size := v.size
	switch {
	case v.body != nil:
		b, size = v.body, int64(len(v.body))
	case v.comp != nil:
		if v.file != nil {
			// A retained file is written part by part after the headers,
			// while a newer head or the state directory's cap may drop
			// it: held until the body is written (cache.Cache.Hold), or
			// 404 now. A response cut after its status line would look
			// like a network fault to the client.
			var ok bool
			if release, ok = s.cfg.Cache.Hold(s.ctx, v.file); !ok {
				h.Del(fasthttp.HeaderContentEncoding)
				return 0, 0, fmt.Errorf("retained %s: %w", v.file.Path, fs.ErrNotExist)
			}
		}
		var err error
		if parts, err = v.comp.parts(s.ctx, s.blob); err != nil {
			h.Del(fasthttp.HeaderContentEncoding)
			return 0, 0, err
		}
	default:
		var err error
		if b, err = body(s.ctx, v.sum); err != nil {
			h.Del(fasthttp.HeaderContentEncoding)
			return 0, 0, err
		}
		size = int64(len(b))
	}
	status := fasthttp.StatusOK
	start, end := int64(0), size
	if rg := req.PeekCanonical(keyRange); len(rg) > 0 && ifRange(req.PeekCanonical(keyIfRange), v.etag, e.lastMod) {
		rs, re, ok, valid := parseRange(rg, size)
		switch {
		case valid && !ok:
			ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
			var buf [32]byte
			cr := append(append(buf[:0], "bytes */"...), strconv.FormatInt(size, 10)...)
			h.SetCanonical(hdrContentRange, cr)
			// Content-Encoding and Vary stay: the length above and the
			// ETag are those of the variant selected (the gzip copy).
			ctx.Response.ResetBody()
			return fasthttp.StatusRequestedRangeNotSatisfiable, 0, nil
		case valid:
			status = fasthttp.StatusPartialContent
			h.SetContentRange(int(rs), int(re-1), int(size))
			start, end = rs, re
		}
	}
	ctx.SetStatusCode(status)
	if parts != nil {
		// A composite file is written part by part from the cache's
		// blobs, never assembled in memory.
		// fasthttp closes the stream once the body is written, or when
		// the response is dropped (HEAD included): that ends the hold.
		ctx.Response.SetBodyStream(&partsReader{ctx: s.ctx, get: s.blob, parts: parts, off: start, n: end - start, release: release}, int(end-start))
		release = nil
	} else {
		// The slices are shared and never written (cache.Cache's rule);
		// SetBodyRaw keeps them without a copy.
		ctx.Response.SetBodyRaw(b[start:end])
	}
	if ctx.IsHead() {
		return status, 0, nil
	}
	return status, int(end - start), nil
}

// notModified evaluates If-None-Match, or If-Modified-Since when there is
// no If-None-Match (RFC 9110, section 13.2.2), for a GET or HEAD.
func notModified(req *fasthttp.RequestHeader, etag []byte, mod time.Time) bool {
	if inm := req.PeekCanonical(keyIfNoneMatch); len(inm) > 0 {
		return etagMatch(inm, etag, true)
	}
	ims := req.PeekCanonical(keyIfModifiedSince)
	if len(ims) == 0 {
		return false
	}
	t, err := fasthttp.ParseHTTPDate(ims)
	return err == nil && !mod.After(t)
}

// etagMatch reports whether list (an If-None-Match or If-Match value)
// names etag; weak compares W/"x" equal to "x" (RFC 9110, 8.8.3.2).
func etagMatch(list, etag []byte, weak bool) bool {
	for len(list) > 0 {
		var tag []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			tag, list = list[:i], list[i+1:]
		} else {
			tag, list = list, nil
		}
		tag = bytes.TrimSpace(tag)
		if len(tag) == 1 && tag[0] == '*' {
			return true
		}
		if weak {
			tag = bytes.TrimPrefix(tag, []byte("W/"))
		}
		if bytes.Equal(tag, etag) {
			return true
		}
	}
	return false
}

// ifRange reports whether a Range applies given If-Range (RFC 9110,
// 13.1.5): absent, the same strong ETag, or the same Last-Modified.
func ifRange(ir, etag, lastMod []byte) bool {
	if len(ir) == 0 {
		return true
	}
	if ir[0] == '"' {
		return bytes.Equal(ir, etag)
	}
	return bytes.Equal(ir, lastMod)
}

// parseRange parses a Range header for a body of size bytes: one
// "bytes=" range, as start and end (exclusive). valid is false for a
// header to ignore (other unit, bad syntax, several ranges: those get the
// whole body with 200, which RFC 9110 allows); ok is false for a valid
// range that is not satisfiable (416).
func parseRange(h []byte, size int64) (start, end int64, ok, valid bool) {
	spec, found := bytes.CutPrefix(h, []byte("bytes="))
	if !found || bytes.IndexByte(spec, ',') >= 0 {
		return 0, 0, false, false
	}
	spec = bytes.TrimSpace(spec)
	i := bytes.IndexByte(spec, '-')
	if i < 0 {
		return 0, 0, false, false
	}
	first, last := spec[:i], spec[i+1:]
	if len(first) == 0 { // suffix: the last n bytes
		n, err := parseDigits(last)
		if err != nil {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, false, true
		}
		return max(size-n, 0), size, true, true
	}
	a, err := parseDigits(first)
	if err != nil {
		return 0, 0, false, false
	}
	b := size - 1
	if len(last) > 0 {
		if b, err = parseDigits(last); err != nil || b < a {
			return 0, 0, false, false
		}
	}
	if a >= size {
		return 0, 0, false, true
	}
	return a, min(b, size-1) + 1, true, true
}

func parseDigits(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 18 {
		return 0, strconv.ErrSyntax
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip: named
// (or x-gzip, or *) with a q-value above zero (RFC 9110, 12.5.3).
func acceptsGzip(ae []byte) bool {
	star, gz := false, -1
	for len(ae) > 0 {
		var tok []byte
		if i := bytes.IndexByte(ae, ','); i >= 0 {
			tok, ae = ae[:i], ae[i+1:]
		} else {
			tok, ae = ae, nil
		}
		name, params, _ := bytes.Cut(tok, []byte(";"))
		name = bytes.TrimSpace(name)
		accept := !zeroQ(params)
		switch {
		case bytes.EqualFold(name, valGzip), bytes.EqualFold(name, []byte("x-gzip")):
			if accept {
				gz = 1
			} else {
				gz = 0
			}
		case len(name) == 1 && name[0] == '*':
			star = accept
		}
	}
	if gz >= 0 {
		return gz == 1
	}
	return star
}

// zeroQ reports whether parameters hold q=0 (q=0.0, q=0.000 ...).
func zeroQ(params []byte) bool {
	for len(params) > 0 {
		var p []byte
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		k, v, ok := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if !ok || len(k) != 1 || (k[0] != 'q' && k[0] != 'Q') {
			continue
		}
		v = bytes.TrimSpace(v)
		if len(v) == 0 || v[0] != '0' {
			return false
		}
		return len(bytes.Trim(v[1:], ".0")) == 0
	}
	return false
}
