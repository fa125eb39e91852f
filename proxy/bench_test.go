package proxy

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// request prepares a fasthttp request for the handler, as the server
// would parse it.
func request(e *env, path string, headers ...string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost(e.addr)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	return &ctx
}

func serveOnce(s *Server, ctx *fasthttp.RequestCtx) {
	ctx.Response.Reset()
	s.handle(ctx)
}

func benchmarkHit(b *testing.B, path string, headers ...string) {
	e := newEnv(b, ModeReverse)
	h := e.sync()
	if path == "" {
		path = fileOf(b, h, "snapshot", "xml").Path
	}
	ctx := request(e, e.path(path), headers...)
	serveOnce(e.srv, ctx)
	if sc := ctx.Response.StatusCode(); sc != 200 && sc != 206 && sc != 304 {
		b.Fatalf("status %d", sc)
	}
	b.SetBytes(int64(len(ctx.Response.Body())))
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(e.srv, ctx)
	}
}

func BenchmarkNotificationHit(b *testing.B) { benchmarkHit(b, "notification.xml") }
func BenchmarkNotificationGzipHit(b *testing.B) {
	benchmarkHit(b, "notification.xml", "Accept-Encoding", "gzip, deflate, br")
}
func BenchmarkSnapshotHit(b *testing.B)   { benchmarkHit(b, "") }
func BenchmarkSnapshotRange(b *testing.B) { benchmarkHit(b, "", "Range", "bytes=100-199") }

// TestAllocs checks that a hit copies nothing: the body is the cache's
// slice, and the request costs no allocation once the index is built.
func TestAllocs(t *testing.T) {
	e := newEnv(t, ModeReverse)
	h := e.sync()
	snap := fileOf(t, h, "snapshot", "xml")
	blob, err := e.cache.Blob(t.Context(), snap.Sum)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		path    string
		headers []string
		body    []byte
	}{
		{"notification", "notification.xml", nil, h.NotificationXML},
		{"snapshot", snap.Path, nil, blob},
		{"snapshot 304", snap.Path, []string{"If-None-Match", `"x", "y"`}, nil},
		{"notification gzip", "notification.xml", []string{"Accept-Encoding", "gzip;q=0.5, deflate, br"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := request(e, e.path(tt.path), tt.headers...)
			serveOnce(e.srv, ctx)
			if tt.body != nil && &ctx.Response.Body()[0] != &tt.body[0] {
				t.Errorf("body is a copy, want the shared slice")
			}
			if n := testing.AllocsPerRun(100, func() { serveOnce(e.srv, ctx) }); n != 0 {
				t.Errorf("allocations per request: got %v, want 0", n)
			}
		})
	}
}

// TestGzipCopies serves a head whose snapshot has a gzip copy, as the
// follower publishes them: the copy when the client accepts gzip, with its
// own ETag, and the plain file otherwise.
func TestGzipCopies(t *testing.T) {
	e := newEnv(t, ModeReverse)
	h := e.sync()
	snap := fileOf(t, h, "snapshot", "xml")
	plain, err := e.cache.Blob(t.Context(), snap.Sum)
	if err != nil {
		t.Fatal(err)
	}
	var gz []byte
	for _, f := range h.Files {
		if f.Gzip && f.Path == snap.Path { // the follower made the copy
			if gz, err = e.cache.Blob(t.Context(), f.Sum); err != nil {
				t.Fatal(err)
			}
		}
	}
	if gz == nil {
		t.Fatalf("the follower published no gzip copy of %s", snap.Path)
	}
	resp, body := e.get("GET", e.path(snap.Path), "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(body, gz) || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("with gzip: got Content-Encoding %q, %d bytes; want the copy's %d", resp.Header.Get("Content-Encoding"), len(body), len(gz))
	}
	gzTag := resp.Header.Get("ETag")
	resp, body = e.get("GET", e.path(snap.Path), "Accept-Encoding", "identity")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) || resp.Header.Get("ETag") == gzTag {
		t.Errorf("without gzip: got Content-Encoding %q, %d bytes, ETag %s (gzip %s)", resp.Header.Get("Content-Encoding"), len(body), resp.Header.Get("ETag"), gzTag)
	}
	resp, body = e.get("GET", e.path(snap.Path), "Accept-Encoding", "gzip", "Range", "bytes=0-1")
	if resp.StatusCode != 206 || !bytes.Equal(body, gz[:2]) {
		t.Errorf("range of the gzip copy: got %d %x, want 206 %x", resp.StatusCode, body, gz[:2])
	}
}

// BenchmarkBaselineRaw is the floor the hits compare with: a handler that
// only sets a status, a content type and the same notification body.
func BenchmarkBaselineRaw(b *testing.B) {
	e := newEnv(b, ModeReverse)
	h := e.sync()
	body := h.NotificationXML
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(200)
		ctx.Response.Header.SetContentTypeBytes(ctypeXML)
		ctx.Response.SetBodyRaw(body)
	}
	ctx := request(e, e.path("notification.xml"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		handler(ctx)
	}
}
