package rrdpxml

import (
	"encoding/base64"
	"fmt"
)

// The Append functions write a snapshot in pieces, byte for byte as a
// Writer would: the root's start tag, publish elements, the end tag. A
// caller that keeps the elements of unchanged objects from one serial to
// the next (proxy/follow's fragments) assembles the next snapshot from
// them without encoding it again. They check nothing but the session id:
// the URIs and contents are those of a verified state.

// AppendSnapshotStart appends the start tag of a snapshot of session sid
// at serial.
func AppendSnapshotStart(b []byte, sid string, serial uint64) ([]byte, error) {
	s, err := parseSessionID(sid)
	if err != nil {
		return b, fmt.Errorf("rrdpxml: snapshot start: %w", err)
	}
	if serial == 0 {
		return b, fmt.Errorf("rrdpxml: snapshot start: %w", errorf(ErrSerial, "0 is not a positive integer"))
	}
	return appendRootStart(b, KindSnapshot, s, serial), nil
}

// AppendPublish appends the publish element of a snapshot for uri.
func AppendPublish(b []byte, uri string, content []byte) []byte {
	b = append(b, `  <publish uri="`...)
	b = appendEscaped(b, uri)
	b = append(b, `">`...)
	b = base64.StdEncoding.AppendEncode(b, content)
	return append(b, "</publish>\n"...)
}

// PublishSize is the size of AppendPublish's element for uri and content.
func PublishSize(uri string, content []byte) int {
	return len(`  <publish uri="">`) + escapedLen(uri) + base64.StdEncoding.EncodedLen(len(content)) + len("</publish>\n")
}

// SnapshotEnd is the end tag of a snapshot.
const SnapshotEnd = "</snapshot>\n"

func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&', '<', '>':
			n += 3 // &amp; is 5 for 1, &lt; and &gt; 4
			if s[i] == '&' {
				n++
			}
		case '"':
			n += 5
		}
	}
	return n
}
