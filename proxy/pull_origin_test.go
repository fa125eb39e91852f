package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/proxy/upstream"
)

// badOrigin is a real HTTP origin on 127.0.0.1 whose notification either
// fails at once (500) or hangs until release is closed or the request ends.
type badOrigin struct {
	url     string
	fetches atomic.Int64
	arrived chan struct{} // one send per request, when hang is set
	release chan struct{}
	once    sync.Once
}

// open lets the hanging requests go on.
func (o *badOrigin) open() { o.once.Do(func() { close(o.release) }) }

func startBadOrigin(t *testing.T, hang bool) *badOrigin {
	t.Helper()
	o := &badOrigin{arrived: make(chan struct{}, 64), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.fetches.Add(1)
		if hang {
			o.arrived <- struct{}{}
			select {
			case <-o.release:
			case <-r.Context().Done():
				return
			}
		}
		http.Error(w, "origin broken", http.StatusInternalServerError)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		o.open()
		srv.Close()
	})
	o.url = "http://" + ln.Addr().String() + "/rrdp/notification.xml"
	return o
}

// pullServer is a Server with one reverse repository at p.example in front
// of origin, with no head, so that every path is a pull-through.
type pullServer struct {
	s    *Server
	addr string
}

func startPullServer(t *testing.T, origin string, cfg Config) *pullServer {
	t.Helper()
	cl, err := upstream.New(upstream.Config{HeaderTimeout: 10 * time.Minute, NotificationTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.Cache, cfg.Client = c, cl
	cfg.Repos = []Repo{{Name: "t", Origin: origin, Base: "https://p.example/rrdp/", Hosts: []string{"p.example"}}}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &pullServer{s: s, addr: ln.Addr().String()}
}

func (p *pullServer) status(t *testing.T, path string) int {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+p.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "p.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestPullFailedNotificationRemembered: with the origin failing, requests
// for distinct unknown paths within minRefresh make one fetch of its
// notification and are answered 502; after minRefresh one more is made.
func TestPullFailedNotificationRemembered(t *testing.T) {
	o := startBadOrigin(t, false)
	var mu sync.Mutex
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	ps := startPullServer(t, o.url, Config{Now: now})
	for i := range 30 {
		if got := ps.status(t, fmt.Sprintf("/rrdp/x%d.xml", i)); got != http.StatusBadGateway {
			t.Errorf("request %d: got %d, want 502", i, got)
		}
	}
	if n := o.fetches.Load(); n != 1 {
		t.Errorf("origin notification fetches for 30 requests within minRefresh: got %d, want 1", n)
	}
	mu.Lock()
	clock = clock.Add(minRefresh)
	mu.Unlock()
	if got := ps.status(t, "/rrdp/y.xml"); got != http.StatusBadGateway {
		t.Errorf("request after minRefresh: got %d, want 502", got)
	}
	if n := o.fetches.Load(); n != 2 {
		t.Errorf("origin notification fetches after minRefresh: got %d, want 2", n)
	}
}

// TestPullSlowOrigin: requests for distinct unknown paths while the
// origin's notification hangs share its one fetch; a waiter leaves at its
// PullWait with 504 while the fetch goes on; Shutdown cancels the fetch
// instead of waiting for it.
func TestPullSlowOrigin(t *testing.T) {
	t.Run("one notification fetch for concurrent requests", func(t *testing.T) {
		o := startBadOrigin(t, true)
		ps := startPullServer(t, o.url, Config{})
		const n = 6
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { codes[i] = ps.status(t, fmt.Sprintf("/rrdp/x%d.xml", i)) })
		}
		<-o.arrived
		// Wait until every request has its pull under way.
		r := ps.s.tab.Load().repos[0]
		deadline := time.Now().Add(30 * time.Second)
		for {
			r.pull.mu.Lock()
			k := len(r.pull.calls)
			r.pull.mu.Unlock()
			if k == n || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		o.open()
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusBadGateway {
				t.Errorf("request %d: got %d, want 502", i, c)
			}
		}
		if got := o.fetches.Load(); got != 1 {
			t.Errorf("origin notification fetches for %d concurrent requests: got %d, want 1", n, got)
		}
	})
	t.Run("waiter leaves at PullWait", func(t *testing.T) {
		o := startBadOrigin(t, true)
		defer o.open()
		ps := startPullServer(t, o.url, Config{PullWait: 100 * time.Millisecond})
		if got := ps.status(t, "/rrdp/x.xml"); got != http.StatusGatewayTimeout {
			t.Errorf("request while the origin hangs: got %d, want 504", got)
		}
		select {
		case <-o.arrived:
		default:
			t.Errorf("the origin saw no fetch")
		}
	})
	t.Run("shutdown cancels pulls", func(t *testing.T) {
		o := startBadOrigin(t, true)
		ps := startPullServer(t, o.url, Config{})
		code := make(chan int, 1)
		go func() { code <- ps.status(t, "/rrdp/x.xml") }()
		<-o.arrived
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- ps.s.Shutdown(ctx) }()
		// The origin still hangs: the request is answered all the same.
		if c := <-code; c != http.StatusServiceUnavailable {
			t.Errorf("request whose pull shutdown cancelled: got %d, want 503", c)
		}
		o.open()
		if err := <-shut; err != nil {
			t.Errorf("shutdown with a pull under way: %v, want nil", err)
		}
	})
}
