package cache

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// writeChunk is the buffer WriteJSON fills before each write to its
// writer.
const writeChunk = 32 << 10

// WriteJSON writes h in its stored form to w and returns the number of
// bytes written: the bytes of MarshalJSON (the compact encoding of headV2
// by encoding/json, field for field), written a file at a time.
//
// A head names its retained files too, thousands of them when serials are
// frequent (a serial a second retains about 8 files a second until the
// state directory's cap drops the oldest), and every serial stores its
// head again. Built whole, by reflection, in a growing buffer and then
// compacted into another, one such head cost about 4 times its size in
// garbage: 8 MB a serial for 4,800 files (1.9 MB of JSON), which stood in
// the peak heap of every serial beside its new segments. Written here, the
// encoding holds one buffer of writeChunk and the strings of one file.
func (h *Head) WriteJSON(w io.Writer) (int64, error) {
	e := headWriter{w: w, b: make([]byte, 0, writeChunk)}
	return e.head(h)
}

// MarshalJSON encodes h in the stored form of version headVersion.
func (h *Head) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(256 + len(h.NotificationXML)*4/3 + len(h.NotificationBin)*4/3 + 360*len(h.Files))
	if _, err := h.WriteJSON(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type headWriter struct {
	w   io.Writer
	b   []byte
	n   int64
	err error
}

func (e *headWriter) flush() {
	if e.err != nil || len(e.b) == 0 {
		return
	}
	n, err := e.w.Write(e.b)
	if err == nil && n < len(e.b) {
		err = io.ErrShortWrite
	}
	e.n += int64(n)
	e.err = err
	e.b = e.b[:0]
}

func (e *headWriter) head(h *Head) (int64, error) {
	origin, err := nameOf(formatNames, h.Origin, "origin format")
	if err != nil {
		return 0, fmt.Errorf("cache: encode head of %s: %w", h.Repo, err)
	}
	b := append(e.b, `{"v":`...)
	b = strconv.AppendInt(b, headVersion, 10)
	b = appendField(b, "repo", h.Repo)
	b = appendField(b, "session", h.Session)
	b = append(b, `,"serial":`...)
	b = strconv.AppendUint(b, h.Serial, 10)
	if h.Resets != 0 {
		b = append(b, `,"resets":`...)
		b = strconv.AppendUint(b, h.Resets, 10)
	}
	if origin != "" {
		b = appendField(b, "origin", origin)
	}
	if h.Transparent {
		b = append(b, `,"transparent":true`...)
	}
	b = append(b, `,"time":`...)
	b = appendTime(b, h.Time)
	b = append(b, `,"notification_xml":`...)
	b = appendBytes(b, h.NotificationXML)
	b = append(b, `,"notification_bin":`...)
	b = appendBytes(b, h.NotificationBin)
	// Always a list, never null, as the reflection encoding before it
	// wrote (its Files was made of len(h.Files)).
	b = append(b, `,"files":[`...)
	e.b = b
	for i := range h.Files {
		f := &h.Files[i]
		fm, err := nameOf(formatNames, f.Format, "format")
		if err != nil {
			return e.n, fmt.Errorf("cache: encode head of %s: file %s: %w", h.Repo, f.Path, err)
		}
		kd, err := nameOf(kindNames, f.Kind, "kind")
		if err != nil {
			return e.n, fmt.Errorf("cache: encode head of %s: file %s: %w", h.Repo, f.Path, err)
		}
		b := e.b
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"path":`...)
		b = appendString(b, f.Path)
		b = append(b, `,"sum":"`...)
		b = appendHex(b, f.Sum)
		b = append(b, `","size":`...)
		b = strconv.AppendInt(b, f.Size, 10)
		if fm != "" {
			b = appendField(b, "format", fm)
		}
		if kd != "" {
			b = appendField(b, "kind", kd)
		}
		b = append(b, `,"serial":`...)
		b = strconv.AppendUint(b, f.Serial, 10)
		if !f.Expires.IsZero() {
			b = append(b, `,"expires":`...)
			b = appendTime(b, f.Expires)
		}
		if f.Upstream != ([32]byte{}) {
			b = append(b, `,"upstream":"`...)
			b = append(appendHex(b, f.Upstream), '"')
		}
		if f.Gzip {
			b = append(b, `,"gzip":true`...)
		}
		if f.Index != ([32]byte{}) {
			b = append(b, `,"index":"`...)
			b = append(appendHex(b, f.Index), '"')
		}
		e.b = append(b, '}')
		if len(e.b) >= writeChunk-1024 {
			if e.flush(); e.err != nil {
				// Stop at the writer's first error rather than encode
				// the rest into a buffer nothing drains.
				break
			}
		}
	}
	e.b = append(e.b, ']', '}')
	e.flush()
	if e.err != nil {
		return e.n, fmt.Errorf("cache: write head of %s: %w", h.Repo, e.err)
	}
	return e.n, nil
}

func appendField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendString appends s as encoding/json quotes it. Paths, URIs and
// session ids are printable ASCII without the characters it escapes (",
// \, <, >, &), written as they are; anything else goes through
// encoding/json itself, so the bytes are its bytes in every case.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendBytes appends p as encoding/json encodes a []byte: base64 in
// quotes, null for nil.
func appendBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

func appendHex(b []byte, s [32]byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range s {
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return b
}

// appendTime appends timeText(t) quoted; its characters need no escape.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	if !t.IsZero() {
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, '"')
}
