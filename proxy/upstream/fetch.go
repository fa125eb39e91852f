package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

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
// and closes the response; for 304 Body is empty.
type Response struct {
	Status int // 200 or 304
	// URL is where the response came from, after redirects.
	URL                string
	ETag, LastModified string
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
// *Error. The deadline of the whole fetch, body included, is the kind's
// timeout or ctx's deadline, whichever comes first; cancelling ctx cuts
// the body short.
func (c *Client) Fetch(ctx context.Context, req Request) (*Response, error) {
	max, timeout := c.cfg.limits(req.Kind)
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	origin, err := parseOrigin(req.URL)
	if err != nil {
		return nil, &Error{Op: "get", URL: req.URL, Err: err}
	}
	cur := req.URL
	for hops := 0; ; hops++ {
		if err := ctx.Err(); err != nil {
			return nil, &Error{Op: "get", URL: cur, Err: err}
		}
		hreq := fasthttp.AcquireRequest()
		hresp := fasthttp.AcquireResponse()
		hreq.SetRequestURI(cur)
		hreq.Header.SetMethod(fasthttp.MethodGet)
		hreq.Header.Set("Accept-Encoding", "gzip")
		if req.ETag != "" {
			hreq.Header.Set("If-None-Match", req.ETag)
		}
		if req.LastModified != "" {
			hreq.Header.Set("If-Modified-Since", req.LastModified)
		}
		err := c.http.DoDeadline(hreq, hresp, deadline)
		fasthttp.ReleaseRequest(hreq)
		if err != nil {
			release(hresp)
			return nil, &Error{Op: "get", URL: cur, Err: classify(err)}
		}
		c.headersDone(hresp.LocalAddr())
		status := hresp.StatusCode()
		switch {
		case status == fasthttp.StatusNotModified:
			r := &Response{Status: status, URL: cur, ETag: string(hresp.Header.Peek("ETag")), LastModified: string(hresp.Header.Peek("Last-Modified"))}
			release(hresp)
			return r, nil
		case status == fasthttp.StatusOK:
			if n := hresp.Header.ContentLength(); n > 0 && int64(n) > max {
				release(hresp)
				return nil, &Error{Op: "get", URL: cur, Err: fmt.Errorf("%w: content-length %d, cap %d", ErrTooLarge, n, max)}
			}
			r := &Response{Status: status, URL: cur, ETag: string(hresp.Header.Peek("ETag")), LastModified: string(hresp.Header.Peek("Last-Modified"))}
			enc := strings.ToLower(strings.TrimSpace(string(hresp.Header.ContentEncoding())))
			if enc != "" && enc != "gzip" && enc != "identity" {
				release(hresp)
				return nil, &Error{Op: "get", URL: cur, Err: fmt.Errorf("%w: content-encoding %q", ErrGzip, enc)}
			}
			r.Body = newBody(ctx, c, hresp, cur, max, enc == "gzip")
			return r, nil
		case isRedirect(status):
			loc := string(hresp.Header.Peek("Location"))
			release(hresp)
			next, err := c.redirect(origin, cur, loc, hops)
			if err != nil {
				return nil, &Error{Op: "get", URL: cur, Err: err}
			}
			cur = next
		default:
			release(hresp)
			return nil, &Error{Op: "get", URL: cur, Err: fmt.Errorf("%w %d", ErrStatus, status)}
		}
	}
}

func release(r *fasthttp.Response) {
	_ = r.CloseBodyStream()
	fasthttp.ReleaseResponse(r)
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
	next.Fragment = ""
	o, err := parseOrigin(next.String())
	if err != nil || o != origin {
		return "", fmt.Errorf("%w: %s leaves the origin %s", ErrRedirect, next, origin)
	}
	return next.String(), nil
}

// Origin returns the origin of an http or https URL (RFC 6454):
// "scheme://host:port", lowercase, with the default port made explicit.
func Origin(rawURL string) (string, error) { return parseOrigin(rawURL) }

func parseOrigin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrURL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch scheme {
	case "https":
		if port == "" {
			port = "443"
		}
	case "http":
		if port == "" {
			port = "80"
		}
	default:
		return "", fmt.Errorf("%w: %q is not http or https", ErrURL, rawURL)
	}
	if u.Hostname() == "" || u.User != nil {
		return "", fmt.Errorf("%w: %q has no host or has user info", ErrURL, rawURL)
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// classify maps the errors of fasthttp and net to the package's causes.
func classify(err error) error {
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrTooSlow) || errors.Is(err, ErrTooLarge) {
		return err
	}
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return err
}
