package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTP checks every HTTP rule with Go's client against a real
// follower's head.
func TestHTTP(t *testing.T) {
	e := newEnv(t, ModeReverse)
	h := e.sync()
	snap := fileOf(t, h, "snapshot", "xml")
	snapBin := fileOf(t, h, "snapshot", "bin")
	snapBytes, err := e.cache.Blob(t.Context(), snap.Sum)
	if err != nil {
		t.Fatal(err)
	}
	notif, _ := e.get("GET", e.path("notification.xml"))
	etag, lastMod := notif.Header.Get("ETag"), notif.Header.Get("Last-Modified")
	snapResp, _ := e.get("GET", e.path(snap.Path))
	snapETag := snapResp.Header.Get("ETag")
	gzNotif, _ := e.get("GET", e.path("notification.xml"), "Accept-Encoding", "gzip")
	gzETag := gzNotif.Header.Get("ETag")
	gzSnap, gzSnapBody := e.get("GET", e.path(snap.Path), "Accept-Encoding", "gzip")
	if gzSnap.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("snapshot with Accept-Encoding gzip: Content-Encoding %q, want gzip", gzSnap.Header.Get("Content-Encoding"))
	}
	gzSnapETag, gzSize := gzSnap.Header.Get("ETag"), strconv.Itoa(len(gzSnapBody))
	lmTime, err := http.ParseTime(lastMod)
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", lastMod, err)
	}
	before := lmTime.Add(-time.Hour).Format(http.TimeFormat)
	size := strconv.Itoa(len(snapBytes))

	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		want    map[string]string // headers; "" means absent
		body    []byte            // nil: not checked
		bodyLen int               // -1: not checked
	}{
		{name: "notification xml", method: "GET", path: e.path("notification.xml"), status: 200, bodyLen: -1,
			body: h.NotificationXML,
			want: map[string]string{"Content-Type": "application/xml", "Cache-Control": "public, max-age=60, stale-if-error=86400",
				"Vary": "Accept-Encoding", "ETag": etag, "Last-Modified": lastMod, "Content-Encoding": ""}},
		{name: "notification bin", method: "GET", path: e.path("notification.bin"), status: 200, bodyLen: -1,
			body: h.NotificationBin, want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "snapshot xml", method: "GET", path: e.path(snap.Path), status: 200, bodyLen: -1, body: snapBytes,
			want: map[string]string{"Content-Type": "application/xml", "Cache-Control": "public, max-age=31536000, immutable",
				"Accept-Ranges": "bytes", "ETag": snapETag}},
		{name: "snapshot bin", method: "GET", path: e.path(snapBin.Path), status: 200, bodyLen: int(snapBin.Size),
			want: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "if-none-match", method: "GET", path: e.path("notification.xml"), headers: []string{"If-None-Match", etag},
			status: 304, bodyLen: 0, want: map[string]string{"ETag": etag}},
		{name: "if-none-match weak in a list", method: "GET", path: e.path("notification.xml"),
			headers: []string{"If-None-Match", `"x", W/` + etag}, status: 304, bodyLen: 0},
		{name: "if-none-match other", method: "GET", path: e.path("notification.xml"), headers: []string{"If-None-Match", `"00"`},
			status: 200, body: h.NotificationXML},
		{name: "if-none-match wins over if-modified-since", method: "GET", path: e.path("notification.xml"),
			headers: []string{"If-None-Match", `"00"`, "If-Modified-Since", lastMod}, status: 200, bodyLen: len(h.NotificationXML)},
		{name: "if-modified-since same", method: "GET", path: e.path("notification.xml"), headers: []string{"If-Modified-Since", lastMod},
			status: 304, bodyLen: 0, want: map[string]string{"Last-Modified": lastMod}},
		{name: "if-modified-since earlier", method: "GET", path: e.path("notification.xml"), headers: []string{"If-Modified-Since", before},
			status: 200, bodyLen: len(h.NotificationXML)},
		{name: "snapshot 304", method: "GET", path: e.path(snap.Path), headers: []string{"If-None-Match", snapETag}, status: 304, bodyLen: 0},
		{name: "gzip notification", method: "GET", path: e.path("notification.xml"), headers: []string{"Accept-Encoding", "br, gzip"},
			status: 200, bodyLen: -1, want: map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding", "ETag": gzETag}},
		{name: "gzip refused", method: "GET", path: e.path("notification.xml"), headers: []string{"Accept-Encoding", "gzip;q=0, *"},
			status: 200, body: h.NotificationXML, want: map[string]string{"Content-Encoding": ""}},
		{name: "gzip etag 304", method: "GET", path: e.path("notification.xml"), headers: []string{"Accept-Encoding", "gzip", "If-None-Match", gzETag},
			status: 304, bodyLen: 0},
		{name: "range", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=0-9"}, status: 206,
			body: snapBytes[:10], want: map[string]string{"Content-Range": "bytes 0-9/" + size, "Content-Length": "10"}},
		{name: "range open", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=100-"}, status: 206,
			body: snapBytes[100:]},
		{name: "range suffix", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=-5"}, status: 206,
			body: snapBytes[len(snapBytes)-5:]},
		{name: "range past end", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=" + size + "-"}, status: 416,
			want: map[string]string{"Content-Range": "bytes */" + size, "Content-Encoding": "", "ETag": snapETag}, bodyLen: -1},
		// The 416 of the gzip copy describes the gzip copy: its length,
		// its ETag and its Content-Encoding, consistently.
		{name: "range past end of gzip copy", method: "GET", path: e.path(snap.Path),
			headers: []string{"Accept-Encoding", "gzip", "Range", "bytes=" + gzSize + "-"}, status: 416, bodyLen: -1,
			want: map[string]string{"Content-Range": "bytes */" + gzSize, "Content-Encoding": "gzip", "ETag": gzSnapETag,
				"Vary": "Accept-Encoding"}},
		{name: "multi range is whole", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=0-1,5-6"}, status: 200,
			body: snapBytes},
		{name: "if-range other", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=0-9", "If-Range", `"00"`},
			status: 200, body: snapBytes},
		{name: "if-range same", method: "GET", path: e.path(snap.Path), headers: []string{"Range", "bytes=0-9", "If-Range", snapETag},
			status: 206, body: snapBytes[:10]},
		{name: "head", method: "HEAD", path: e.path(snap.Path), status: 200, bodyLen: 0,
			want: map[string]string{"Content-Length": size, "ETag": snapETag}},
		{name: "post", method: "POST", path: e.path("notification.xml"), status: 405, bodyLen: -1,
			want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "put", method: "PUT", path: "/metrics", status: 405, bodyLen: -1, want: map[string]string{"Allow": "GET, HEAD"}},
		{name: "unknown path", method: "GET", path: "/nothing/here.xml", status: 404, bodyLen: -1,
			want: map[string]string{"Cache-Control": "no-store"}},
		{name: "other host", method: "GET", path: e.path("notification.xml"), headers: []string{"Host", "evil.example"}, status: 404, bodyLen: -1},
		{name: "dot dot", method: "GET", path: e.path("../../etc/passwd"), status: 404, bodyLen: -1,
			want: map[string]string{"Cache-Control": "no-store"}},
		{name: "directory", method: "GET", path: e.path(""), status: 404, bodyLen: -1,
			want: map[string]string{"Cache-Control": "no-store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.get(tt.method, tt.path, tt.headers...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status: got %d, want %d (body %.100q)", resp.StatusCode, tt.status, body)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: got %q, want %q", k, got, v)
				}
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body: got %d bytes, want %d", len(body), len(tt.body))
			}
			if tt.bodyLen >= 0 && tt.body == nil && len(body) != tt.bodyLen {
				t.Errorf("body: got %d bytes, want %d", len(body), tt.bodyLen)
			}
		})
	}

	t.Run("etags strong and distinct", func(t *testing.T) {
		for _, tag := range []string{etag, snapETag, gzETag} {
			if !strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, "W/") || len(tag) < 10 {
				t.Errorf("ETag %q is not a strong tag", tag)
			}
		}
		if etag == gzETag || etag == snapETag {
			t.Errorf("ETags: plain %s, gzip %s, snapshot %s; want three", etag, gzETag, snapETag)
		}
	})
	t.Run("gzip body", func(t *testing.T) {
		_, b := e.get("GET", e.path("notification.xml"), "Accept-Encoding", "gzip")
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(plain, h.NotificationXML) {
			t.Errorf("gunzipped: got %d bytes (%v), want the notification's %d", len(plain), err, len(h.NotificationXML))
		}
	})
	t.Run("new state changes notification", func(t *testing.T) {
		e.advance(1)
		h2 := e.sync()
		resp, body := e.get("GET", e.path("notification.xml"), "If-None-Match", etag)
		if resp.StatusCode != 200 || !bytes.Equal(body, h2.NotificationXML) {
			t.Fatalf("after a new serial: got %d with %d bytes, want 200 and the new notification", resp.StatusCode, len(body))
		}
		if lm := resp.Header.Get("Last-Modified"); lm == lastMod {
			t.Errorf("Last-Modified unchanged (%s) for a new notification", lm)
		}
		resp, _ = e.get("GET", e.path("notification.xml"), "If-Modified-Since", lastMod)
		if resp.StatusCode != 200 {
			t.Errorf("If-Modified-Since the old state: got %d, want 200", resp.StatusCode)
		}
		// The previous snapshot stays servable (retention) and keeps its
		// Last-Modified.
		resp, body = e.get("GET", e.path(snap.Path))
		if resp.StatusCode != 200 || sha256.Sum256(body) != snap.Sum {
			t.Errorf("retained snapshot: got %d", resp.StatusCode)
		}
	})
}
