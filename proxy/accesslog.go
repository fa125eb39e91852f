package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// accessLog writes a line per request: the combined format of Apache and
// nginx, or a JSON object. Every byte that came from the client is
// escaped, so that a request cannot forge a line.
type accessLog struct {
	json bool
	mu   sync.Mutex // serializes writes and guards buf
	w    io.Writer
	buf  []byte
}

func newAccessLog(w io.Writer, format string) (*accessLog, error) {
	switch format {
	case "", "combined":
		return &accessLog{w: w}, nil
	case "json":
		return &accessLog{w: w, json: true}, nil
	}
	return nil, fmt.Errorf("proxy: access log format %q (want combined or json): %w", format, ErrConfig)
}

// accessRecord is one line of the JSON access log. Duration is a string
// ("1.5ms"), as every duration in the logs.
type accessRecord struct {
	Time      string `json:"time"`
	Remote    string `json:"remote"`
	Method    string `json:"method"`
	URI       string `json:"uri"`
	Host      string `json:"host"`
	Proto     string `json:"proto"`
	Status    int    `json:"status"`
	Bytes     int    `json:"bytes"`
	Duration  string `json:"duration"`
	Repo      string `json:"repo,omitempty"`
	Referer   string `json:"referer,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

func (l *accessLog) write(ctx *fasthttp.RequestCtx, repo string) {
	n := len(ctx.Response.Body())
	if ctx.IsHead() {
		n = 0
	}
	start := ctx.Time()
	h := &ctx.Request.Header
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	if l.json {
		rec, err := json.Marshal(accessRecord{
			Time: start.UTC().Format(time.RFC3339Nano), Remote: ctx.RemoteIP().String(),
			Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Host: string(ctx.Host()), Proto: string(h.Protocol()),
			Status: ctx.Response.StatusCode(), Bytes: n, Duration: time.Since(start).String(), Repo: repo,
			Referer: string(h.Referer()), UserAgent: string(h.UserAgent()),
		})
		if err != nil {
			return // only strings and numbers: cannot fail
		}
		b = append(append(b, rec...), '\n')
	} else {
		// host - - [time] "request" status bytes "referer" "user agent"
		b = append(b, ctx.RemoteIP().String()...)
		b = append(b, " - - ["...)
		b = start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \""...)
		b = appendEscaped(b, ctx.Method())
		b = append(b, ' ')
		b = appendEscaped(b, ctx.RequestURI())
		b = append(b, ' ')
		b = appendEscaped(b, h.Protocol())
		b = append(b, "\" "...)
		b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
		b = append(b, ' ')
		if n == 0 {
			b = append(b, '-')
		} else {
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, " \""...)
		b = appendField(b, h.Referer())
		b = append(b, "\" \""...)
		b = appendField(b, h.UserAgent())
		b = append(b, "\"\n"...)
	}
	l.buf = b
	l.w.Write(b) // a log that cannot be written is not the client's failure
}

// appendField appends v escaped, or "-" when empty.
func appendField(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, '-')
	}
	return appendEscaped(b, v)
}

// appendEscaped appends v with quotes, backslashes, control characters and
// invalid UTF-8 written as \" \\ and \xHH, as nginx does.
func appendEscaped(b, v []byte) []byte {
	const hexDigits = "0123456789ABCDEF"
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			b = append(b, '\\', 'x', hexDigits[v[0]>>4], hexDigits[v[0]&15])
			size = 1
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		default:
			b = append(b, v[:size]...)
		}
		v = v[size:]
	}
	return b
}
