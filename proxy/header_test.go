package proxy

import (
	"net"
	"strings"
	"testing"
)

// TestHeaderNameCase sends the request headers the handler reads in
// lower case over a raw connection: the server normalises names as it
// parses them, so they must act as their canonical forms do (RFC 9110,
// section 5.1: field names are case-insensitive).
func TestHeaderNameCase(t *testing.T) {
	e := newEnv(t, ModeReverse)
	e.sync()
	resp, _ := e.get("GET", e.path("notification.xml"))
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Fatalf("no validators: ETag %q, Last-Modified %q", etag, lastMod)
	}
	for _, tt := range []struct {
		name, header, want string
	}{
		{"if-none-match", "if-none-match: " + etag, "HTTP/1.1 304"},
		{"if-modified-since", "if-modified-since: " + lastMod, "HTTP/1.1 304"},
		{"accept-encoding", "accept-encoding: gzip", "\r\nContent-Encoding: gzip\r\n"},
		{"range", "range: bytes=0-1", "HTTP/1.1 206"},
		{"range with if-range", "RANGE: bytes=0-1\r\nif-range: \"other\"", "HTTP/1.1 200"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := roundTrip(t, c, "GET "+e.path("notification.xml")+" HTTP/1.1\r\nHost: "+e.addr+"\r\n"+tt.header+"\r\n\r\n")
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
