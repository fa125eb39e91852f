package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// BenchmarkServeNotification measures whole requests through the server
// on 127.0.0.1: keep-alive connections (8 per GOMAXPROCS), each sending
// a GET for the notification and reading the response, as wrk does. It
// includes the kernel and the client; compare it with itself only.
func BenchmarkServeNotification(b *testing.B) {
	e := newEnv(b, ModeReverse)
	h := e.sync()
	req := []byte("GET " + e.path("notification.xml") + " HTTP/1.1\r\nHost: " + e.addr + "\r\n\r\n")
	want := len(h.NotificationXML)
	b.SetBytes(int64(want))
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 16<<10)
		body := make([]byte, want)
		for pb.Next() {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n, err := readResponse(br, body)
			if err != nil || n != want {
				b.Errorf("response: %d bytes, %v; want %d", n, err, want)
				return
			}
		}
	})
}

// readResponse reads one HTTP/1.1 response with a Content-Length from br
// into body and returns the body's length.
func readResponse(br *bufio.Reader, body []byte) (int, error) {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, err
			}
		}
	}
	if n < 0 || n > len(body) {
		return n, strconv.ErrRange
	}
	_, err := io.ReadFull(br, body[:n])
	return n, err
}
