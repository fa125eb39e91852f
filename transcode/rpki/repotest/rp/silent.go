package rp

import (
	"io"
	"net"
	"sync"
	"testing"
)

// SilentOrigin is a TCP listener on 127.0.0.1 that accepts connections
// and reads from them but never writes a byte: an origin that never sends
// headers (over http) or never finishes the TLS handshake (over https).
// accepted receives one value per connection (up to 16 unread). The test's
// cleanup closes the listener and every connection.
func SilentOrigin(t testing.TB) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			acc <- struct{}{}
			wg.Go(func() { io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), acc
}
