package proxy_test

import (
	"context"
	"log"
	"net"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// A node mirroring one repository: the follower publishes into the cache
// with the Base the server routes, and the server answers from the cache.
func ExampleNew() {
	ctx := context.Background()
	origin := "https://rrdp.example.net/rrdp/notification.xml"
	base, err := proxy.BaseURI(proxy.ModeMirror, origin, "https://mirror.example.org/")
	if err != nil {
		log.Fatal(err)
	}
	client, err := upstream.New(upstream.Config{UserAgent: "rrdp-proxy/1.0"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		log.Fatal(err)
	}
	f, err := follow.New(follow.Config{URL: origin, Client: client, Store: c, Base: base})
	if err != nil {
		log.Fatal(err)
	}
	go f.Run(ctx) // the daemon owns it and ends it with ctx
	srv, err := proxy.New(proxy.Config{
		Repos:   []proxy.Repo{{Name: "example", Origin: origin, Mode: proxy.ModeMirror, Base: base, Stats: f.Stats}},
		Cache:   c,
		Client:  client,
		Version: "1.0",
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		// On SIGTERM: no new connections, downloads finish for 30s.
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
