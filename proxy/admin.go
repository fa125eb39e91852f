package proxy

import (
	"net/http"
	"net/http/pprof"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// pprofPrefix is where the admin listener serves net/http/pprof.
var pprofPrefix = []byte("/debug/pprof/")

// pprofHandler serves net/http/pprof's own handlers, registered on a
// private ServeMux (not http.DefaultServeMux, which the import fills too
// but nothing here serves), through fasthttp's adaptor: the admin listener
// is a fasthttp server like the public ones, so the operator pages are
// one handler for both, and pprof's few requests can afford the adaptor's
// buffered response.
var pprofHandler = func() fasthttp.RequestHandler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the index and every named profile
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return fasthttpadaptor.NewFastHTTPHandler(mux)
}()
