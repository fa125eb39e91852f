package rrdpxml

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// writeBufSize is the Writer's buffer: output reaches the underlying
// writer in chunks of this size.
const writeBufSize = 256 << 10

// A Writer writes a snapshot or delta file in the canonical form of this
// package, which is deterministic (the same calls give the same bytes):
//
//	<snapshot xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="UUID" serial="N">
//	  <publish uri="rsync://h/a.roa">BASE64</publish>
//	  <publish uri="rsync://h/b.mft" hash="HEX">BASE64</publish>
//	  <withdraw uri="rsync://h/c.crl" hash="HEX"/>
//	</snapshot>
//
// There is no XML declaration (UTF-8 is XML's default); the root element
// has its attributes in the order above and the session id in lowercase;
// one element per line, indented by two spaces, lines end in LF, the file
// ends with a newline; attributes are uri then hash, hashes lowercase hex;
// content is standard base64 with padding on one line; attribute values
// escape &, <, > and " as &amp; &lt; &gt; &quot;.
//
// The Writer checks what it writes by the decoder's rules with default
// Limits (URIs, no hash on a snapshot's publish, no withdraw in a
// snapshot, no duplicate URI, object size), so that a Decoder
// accepts its output and decodes the same elements. The first error,
// from a check or from the underlying writer, stops the Writer and is
// returned by every later call. A Writer is not safe for concurrent use.
type Writer struct {
	w     io.Writer
	kind  Kind
	lim   Limits
	buf   []byte
	err   error
	uris  uriSet
	count int
	done  bool
}

// NewWriter checks h, a snapshot or delta header, and returns a Writer
// that writes that file to w. Nothing reaches w before the buffer fills or
// Close is called.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Kind != KindSnapshot && h.Kind != KindDelta {
		return nil, fmt.Errorf("rrdpxml: new writer: %w: %v, want snapshot or delta", ErrKind, h.Kind)
	}
	sid, err := parseSessionID(h.SessionID)
	if err != nil {
		return nil, fmt.Errorf("rrdpxml: new %v writer: %w", h.Kind, err)
	}
	if h.Serial == 0 {
		return nil, fmt.Errorf("rrdpxml: new %v writer: %w", h.Kind, errorf(ErrSerial, "0 is not a positive integer"))
	}
	wr := &Writer{w: w, kind: h.Kind, lim: Limits{}.withDefaults(), buf: make([]byte, 0, writeBufSize), uris: newURISet()}
	wr.buf = appendRootStart(wr.buf, h.Kind, sid, h.Serial)
	return wr, nil
}

func appendRootStart(b []byte, kind Kind, sid string, serial uint64) []byte {
	b = append(b, '<')
	b = append(b, kind.String()...)
	b = append(b, ` xmlns="`+Namespace+`" version="1" session_id="`...)
	b = append(b, sid...)
	b = append(b, `" serial="`...)
	b = strconv.AppendUint(b, serial, 10)
	return append(b, "\">\n"...)
}

// Publish writes a publish element. hash is the hash attribute, nil for
// none; a snapshot's publish has none. content is the object; an empty
// one is written as <publish uri="..."></publish>, which a decoder with
// Limits.RejectEmptyContent rejects.
func (w *Writer) Publish(uri string, hash *[32]byte, content []byte) error {
	if err := w.check("publish", uri); err != nil {
		return err
	}
	switch {
	case hash != nil && w.kind == KindSnapshot:
		return w.fail("publish", uri, errorf(ErrUnexpectedHash, "publish with hash"))
	case len(content) > w.lim.MaxObjectSize:
		return w.fail("publish", uri, errorf(ErrTooLarge, "object of %d bytes, over the limit of %d", len(content), w.lim.MaxObjectSize))
	}
	w.reserve(len(uri)*6 + 160)
	w.buf = append(w.buf, `  <publish uri="`...)
	w.buf = appendEscaped(w.buf, uri)
	if hash != nil {
		w.buf = append(w.buf, `" hash="`...)
		w.buf = hex.AppendEncode(w.buf, hash[:])
	}
	w.buf = append(w.buf, `">`...)
	w.appendBase64(content)
	w.reserve(16)
	w.buf = append(w.buf, "</publish>\n"...)
	return nil
}

// Withdraw writes a withdraw element; only a delta has them.
func (w *Writer) Withdraw(uri string, hash [32]byte) error {
	if err := w.check("withdraw", uri); err != nil {
		return err
	}
	if w.kind != KindDelta {
		return w.fail("withdraw", uri, errorf(ErrUnexpectedElement, "<withdraw> in a snapshot"))
	}
	w.reserve(len(uri)*6 + 160)
	w.buf = append(w.buf, `  <withdraw uri="`...)
	w.buf = appendEscaped(w.buf, uri)
	w.buf = append(w.buf, `" hash="`...)
	w.buf = hex.AppendEncode(w.buf, hash[:])
	w.buf = append(w.buf, "\"/>\n"...)
	return nil
}

// Close writes the root end tag and flushes the buffer. It returns the
// first error of the Writer; it does not close the underlying writer.
func (w *Writer) Close() error {
	if w.done || w.err != nil {
		return w.err
	}
	w.done = true
	w.reserve(16)
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, w.kind.String()...)
	w.buf = append(w.buf, ">\n"...)
	w.flush()
	return w.err
}

// check applies the rules common to publish and withdraw.
func (w *Writer) check(op, uri string) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("rrdpxml: %s %s: writer closed", op, uri)
	}
	if err := checkURI(uri, false, w.lim.MaxURILen); err != nil {
		return w.fail(op, uri, err)
	}
	if w.count >= w.lim.MaxObjects {
		return w.fail(op, uri, errorf(ErrTooLarge, "more than %d publish and withdraw elements", w.lim.MaxObjects))
	}
	if !w.uris.addString(uri) {
		return w.fail(op, uri, ErrDuplicateURI)
	}
	w.count++
	return nil
}

func (w *Writer) fail(op, uri string, err error) error {
	w.err = fmt.Errorf("rrdpxml: %s %q: %w", op, uri, err)
	return w.err
}

// reserve flushes the buffer unless it has n free bytes.
func (w *Writer) reserve(n int) {
	if cap(w.buf)-len(w.buf) < n {
		w.flush()
	}
}

func (w *Writer) flush() {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("rrdpxml: write %v: %w", w.kind, err)
	}
	w.buf = w.buf[:0]
}

// appendBase64 encodes src straight into the buffer, flushing as needed.
func (w *Writer) appendBase64(src []byte) {
	enc := base64.StdEncoding
	for len(src) > 0 {
		free := cap(w.buf) - len(w.buf)
		if n := enc.EncodedLen(len(src)); n <= free {
			w.buf = w.buf[:len(w.buf)+n]
			enc.Encode(w.buf[len(w.buf)-n:], src)
			return
		}
		chunk := free / 4 * 3
		if chunk == 0 {
			w.flush()
			continue
		}
		n := enc.EncodedLen(chunk)
		w.buf = w.buf[:len(w.buf)+n]
		enc.Encode(w.buf[len(w.buf)-n:], src[:chunk])
		src = src[chunk:]
		w.flush()
	}
}

// appendEscaped appends an attribute value, escaped.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// EncodeNotification writes n to w in the canonical form (see Writer):
//
//	<notification xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="UUID" serial="N">
//	  <snapshot uri="https://…" hash="HEX"/>
//	  <delta serial="N" uri="https://…" hash="HEX"/>
//	</notification>
//
// Deltas are written in the order of n.Deltas. It checks n by the
// decoder's rules with default Limits and writes nothing if they fail.
func EncodeNotification(w io.Writer, n *Notification) error {
	return EncodeNotificationLimits(w, n, Limits{})
}

// EncodeNotificationLimits is EncodeNotification checking n under lim:
// Limits.AllowHTTP lets it write http:// references.
func EncodeNotificationLimits(w io.Writer, n *Notification, lim Limits) error {
	lim = lim.withDefaults()
	sid, err := parseSessionID(n.SessionID)
	if err != nil {
		return fmt.Errorf("rrdpxml: encode notification: %w", err)
	}
	if n.Serial == 0 {
		return fmt.Errorf("rrdpxml: encode notification: %w", errorf(ErrSerial, "0 is not a positive integer"))
	}
	if err := checkFileURI(n.Snapshot.URI, lim); err != nil {
		return fmt.Errorf("rrdpxml: encode notification: snapshot %q: %w", n.Snapshot.URI, err)
	}
	if len(n.Deltas) > lim.MaxDeltas {
		return fmt.Errorf("rrdpxml: encode notification: %w", errorf(ErrTooLarge, "more than %d deltas", lim.MaxDeltas))
	}
	seen := make(map[uint64]struct{}, len(n.Deltas))
	size := 256 + len(n.Snapshot.URI)*6
	for _, dr := range n.Deltas {
		switch _, dup := seen[dr.Serial]; {
		case dr.Serial == 0:
			return fmt.Errorf("rrdpxml: encode notification: delta %q: %w", dr.URI, errorf(ErrSerial, "0 is not a positive integer"))
		case dr.Serial > n.Serial:
			return fmt.Errorf("rrdpxml: encode notification: delta %q: %w", dr.URI, errorf(ErrDeltaSerial, "delta %d, notification %d", dr.Serial, n.Serial))
		case dup:
			return fmt.Errorf("rrdpxml: encode notification: delta %q: %w", dr.URI, errorf(ErrDuplicateSerial, "%d", dr.Serial))
		}
		seen[dr.Serial] = struct{}{}
		if err := checkFileURI(dr.URI, lim); err != nil {
			return fmt.Errorf("rrdpxml: encode notification: delta %d %q: %w", dr.Serial, dr.URI, err)
		}
		size += 128 + len(dr.URI)*6
	}
	b := make([]byte, 0, size)
	b = appendRootStart(b, KindNotification, sid, n.Serial)
	b = append(b, `  <snapshot uri="`...)
	b = appendEscaped(b, n.Snapshot.URI)
	b = append(b, `" hash="`...)
	b = hex.AppendEncode(b, n.Snapshot.Hash[:])
	b = append(b, "\"/>\n"...)
	for _, dr := range n.Deltas {
		b = append(b, `  <delta serial="`...)
		b = strconv.AppendUint(b, dr.Serial, 10)
		b = append(b, `" uri="`...)
		b = appendEscaped(b, dr.URI)
		b = append(b, `" hash="`...)
		b = hex.AppendEncode(b, dr.Hash[:])
		b = append(b, "\"/>\n"...)
	}
	b = append(b, "</notification>\n"...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("rrdpxml: write notification: %w", err)
	}
	return nil
}
