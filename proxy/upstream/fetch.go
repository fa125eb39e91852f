package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Request is one fetch.
type Request struct {
	URL string
	// Kind decides the size cap and the timeout; zero means a
	// notification.
	Kind rrdpxml.Kind
	// ETag and LastModified, from an earlier Response, make the request
	// conditional (If-None-Match and If-Modified-Since): an unchanged
	// file is answered with status 304 and no body.
	ETag, LastModified string
}

// Response is the answer to a fetch. For status 200 the caller reads Body
// and closes the response; for 304 Body is nil.
type Response struct {
	Status int // 200 or 304
	// Proto is the protocol the origin answered with: "HTTP/1.1" or
	// "HTTP/2.0".
	Proto string
	// URL is where the response came from, after redirects: the public
	// URL, also when Config.FetchFrom sent the request elsewhere.
	URL                string
	ETag, LastModified string
	// ContentType and CacheControl are the origin's headers, for files
	// passed through as they are.
	ContentType, CacheControl string
	// Body streams the body, decompressed and capped. Its errors are
	// *Error values.
	Body *Body
}

// Close releases the response; a body not read to its end is abandoned
// and its connection closed.
func (r *Response) Close() error {
	if r.Body != nil {
		return r.Body.Close()
	}
	return nil
}

// ReadAll reads the whole body and closes the response.
func (r *Response) ReadAll() ([]byte, error) {
	defer r.Close()
	if r.Body == nil {
		return nil, nil
	}
	return r.Body.readAll()
}

// Fetch sends a GET for req and returns the response once its headers are
// in, following redirects within the origin of req.URL. Every error is an
// *Error. The whole fetch, body included, runs under a context that ends
// at the kind's timeout (ErrTimeout), when the body falls below the
// minimum rate (ErrTooSlow), or with ctx (its cause, such as
// context.Canceled; a deadline of ctx counts as ErrTimeout as well), and
// that ending cuts whatever phase is under way: connecting, the TLS
// handshake, the wait for the headers or the body.
func (c *Client) Fetch(ctx context.Context, req Request) (*Response, error) {
	max, timeout := c.cfg.limits(req.Kind)
	origin, err := parseOrigin(req.URL)
	if err != nil {
		return nil, &Error{Op: "get", URL: req.URL, Err: err}
	}
	base, cancelCause := context.WithCancelCause(ctx)
	fctx, stop := context.WithTimeoutCause(base, timeout, fmt.Errorf("%w: a %s fetch takes more than %v", ErrTimeout, kindName(req.Kind), timeout))
	abort := func(cause error) {
		cancelCause(cause)
		stop()
	}
	cur := req.URL
	for hops := 0; ; hops++ {
		resp, err := c.roundTrip(fctx, cur, req)
		if err != nil {
			err = why(fctx, err)
			abort(nil)
			return nil, &Error{Op: "get", URL: cur, Err: err}
		}
		r := &Response{Status: resp.StatusCode, Proto: resp.Proto, URL: cur, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"),
			ContentType: resp.Header.Get("Content-Type"), CacheControl: resp.Header.Get("Cache-Control")}
		status := resp.StatusCode
		switch {
		case status == http.StatusNotModified:
			discard(resp)
			abort(nil)
			return r, nil
		case status == http.StatusOK:
			if n := resp.ContentLength; n > max {
				discard(resp)
				abort(nil)
				return nil, &Error{Op: "get", URL: cur, Err: fmt.Errorf("%w: content-length %d, cap %d", ErrTooLarge, n, max)}
			}
			enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
			if enc != "" && enc != "gzip" && enc != "identity" {
				discard(resp)
				abort(nil)
				return nil, &Error{Op: "get", URL: cur, Err: fmt.Errorf("%w: content-encoding %q", ErrGzip, enc)}
			}
			r.Body = newBody(fctx, abort, c, resp, cur, max, enc == "gzip")
			return r, nil
		case isRedirect(status):
			loc := resp.Header.Get("Location")
			discard(resp)
			next, err := c.redirect(origin, cur, loc, hops)
			if err != nil {
				abort(nil)
				return nil, &Error{Op: "get", URL: cur, Err: err}
			}
			cur = next
		default:
			discard(resp)
			abort(nil)
			return nil, &Error{Op: "get", URL: cur, Err: &StatusError{Code: status}}
		}
	}
}

// roundTrip sends one GET for uri, to Config.FetchFrom when uri has the
// origin it stands for.
func (c *Client) roundTrip(ctx context.Context, uri string, req Request) (*http.Response, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	u.Fragment, u.RawFragment = "", ""
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	hreq.Header.Set("Accept-Encoding", "gzip")
	if req.ETag != "" {
		hreq.Header.Set("If-None-Match", req.ETag)
	}
	if req.LastModified != "" {
		hreq.Header.Set("If-Modified-Since", req.LastModified)
	}
	rt := c.tr
	if c.ff != nil {
		if o, err := parseOrigin(uri); err == nil && o == c.public {
			// The Host header (req.Host) stays the public one; the URL's
			// scheme decides TLS, its host name is the TLS server name,
			// and the ff transport dials ffAddr whatever the URL's port.
			hreq.Host = u.Host
			hreq.URL.Scheme = c.ffScheme
			hreq.URL.Host = net.JoinHostPort(u.Hostname(), c.ffPort)
			rt = c.ff
		}
	}
	return rt.RoundTrip(hreq)
}

// discard drains a little of a body that is not wanted, so that its
// connection can be kept, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

func isRedirect(s int) bool {
	switch s {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// redirect resolves loc against cur and accepts it only within origin.
func (c *Client) redirect(origin, cur, loc string, hops int) (string, error) {
	if hops >= c.cfg.MaxRedirects {
		return "", fmt.Errorf("%w: more than %d redirects", ErrRedirect, c.cfg.MaxRedirects)
	}
	if loc == "" {
		return "", fmt.Errorf("%w: redirect without Location", ErrRedirect)
	}
	base, err := url.Parse(cur)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrURL, err)
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%w: Location %q: %v", ErrRedirect, loc, err)
	}
	next := base.ResolveReference(ref)
	next.Fragment, next.RawFragment = "", ""
	o, err := parseOrigin(next.String())
	if err != nil || o != origin {
		return "", fmt.Errorf("%w: %s leaves the origin %s", ErrRedirect, next, origin)
	}
	return next.String(), nil
}

// why returns the cause of err, an error of a fetch under ctx: once ctx
// ended, its cause (the kind's timeout, the rate floor, or the caller's
// context, whose deadline counts as ErrTimeout too); else err classified.
func why(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return classify(err)
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, cause)
	}
	return cause
}

// classify maps the errors of net/http and net to the package's causes:
// the connect, TLS handshake and response header timeouts are
// ErrTimeout.
func classify(err error) error {
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrTooSlow) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrURL) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

func kindName(k rrdpxml.Kind) string {
	switch k {
	case rrdpxml.KindSnapshot:
		return "snapshot"
	case rrdpxml.KindDelta:
		return "delta"
	}
	return "notification"
}
