package follow

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// element is one publish or withdraw of a snapshot or delta, in either
// format. Content is valid only during the callback.
type element struct {
	URI      string
	Withdraw bool
	Hash     [32]byte
	HasHash  bool
	Content  []byte
}

// walk decodes a snapshot or delta of format f, checks that it is the
// kind, session and serial wanted, and calls fn for every element.
func walk(b []byte, f irpki.Format, kind rrdpxml.Kind, session string, serial uint64, lim rrdpxml.Limits, fn func(*element) error) error {
	return walkReader(bytes.NewReader(b), f, kind, session, serial, lim, fn)
}

// walkReader is walk for a file read from r.
func walkReader(r io.Reader, f irpki.Format, kind rrdpxml.Kind, session string, serial uint64, lim rrdpxml.Limits, fn func(*element) error) error {
	check := func(h rrdpxml.Header) error {
		if h.SessionID != session || h.Serial != serial {
			return fmt.Errorf("%w: %s of session %s serial %d, want session %s serial %d", ErrMismatch, kind, h.SessionID, h.Serial, session, serial)
		}
		return nil
	}
	if f == irpki.FormatBin {
		rd := irpki.NewReader(r, kind, lim)
		h, err := rd.Header()
		if err != nil {
			return err
		}
		if err := check(h); err != nil {
			return err
		}
		var e element
		for {
			g, err := rd.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			for _, en := range g.Entries {
				e = element{URI: g.Repo + en.Name, Hash: en.Hash, HasHash: en.HasHash, Content: en.Content}
				if err := fn(&e); err != nil {
					return err
				}
			}
			for _, en := range g.Withdrawn {
				e = element{URI: g.Repo + en.Name, Withdraw: true, Hash: en.Hash, HasHash: en.HasHash}
				if err := fn(&e); err != nil {
					return err
				}
			}
		}
	}
	// Every file walked was hashed already (as it was fetched, or
	// against its stored sum): the decoder does not hash it again.
	d := rrdpxml.NewDecoderUnhashed(r, lim)
	defer d.Close()
	h, err := d.Header()
	if err != nil {
		return err
	}
	if h.Kind != kind {
		return fmt.Errorf("%w: a %s where a %s was expected", ErrMismatch, h.Kind, kind)
	}
	if err := check(h); err != nil {
		return err
	}
	var e element
	for {
		el, err := d.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		e = element{URI: el.URI, Withdraw: el.Withdraw, Hash: el.Hash, HasHash: el.HasHash, Content: el.Content}
		if err := fn(&e); err != nil {
			return err
		}
	}
}

// object is one object of the repository's current state.
type object struct {
	hash    [32]byte
	content []byte
}

// readSnapshot decodes a snapshot into a fresh object set.
func readSnapshot(b []byte, f irpki.Format, session string, serial uint64, lim rrdpxml.Limits) (map[string]object, error) {
	return readSnapshotFrom(bytes.NewReader(b), f, session, serial, lim)
}

// readSnapshotFrom is readSnapshot for a snapshot read from r.
func readSnapshotFrom(r io.Reader, f irpki.Format, session string, serial uint64, lim rrdpxml.Limits) (map[string]object, error) {
	objs := make(map[string]object)
	err := walkReader(r, f, rrdpxml.KindSnapshot, session, serial, lim, func(e *element) error {
		if e.Withdraw || e.HasHash {
			return fmt.Errorf("%w: snapshot element %s with withdraw or hash", ErrMismatch, e.URI)
		}
		if _, dup := objs[e.URI]; dup {
			return fmt.Errorf("snapshot: %s published twice", e.URI)
		}
		c := bytes.Clone(e.Content)
		objs[e.URI] = object{hash: sha256.Sum256(c), content: c}
		return nil
	})
	return objs, err
}

// overlay holds the changes of verified deltas over a base object set,
// so that nothing touches the base before every delta checked out. A nil
// entry is a withdrawn object.
type overlay struct {
	base    map[string]object
	changes map[string]*object
}

func (o *overlay) get(uri string) (object, bool) {
	if c, ok := o.changes[uri]; ok {
		if c == nil {
			return object{}, false
		}
		return *c, true
	}
	c, ok := o.base[uri]
	return c, ok
}

// size returns the number of objects of the view.
func (o *overlay) size() int {
	n := len(o.base)
	for u, c := range o.changes {
		_, had := o.base[u]
		switch {
		case c == nil && had:
			n--
		case c != nil && !had:
			n++
		}
	}
	return n
}

// applyDelta checks one delta against the state so far and records its
// changes (RFC 8182, section 3.4.2: a publish that replaces and a
// withdraw carry the hash of the object they replace).
func (o *overlay) applyDelta(b []byte, f irpki.Format, session string, serial uint64, lim rrdpxml.Limits) error {
	seen := make(map[string]bool)
	return walk(b, f, rrdpxml.KindDelta, session, serial, lim, func(e *element) error {
		if seen[e.URI] {
			return fmt.Errorf("delta %d: %s appears twice", serial, e.URI)
		}
		seen[e.URI] = true
		cur, exists := o.get(e.URI)
		switch {
		case e.HasHash && !exists:
			return fmt.Errorf("delta %d: %s replaces or withdraws an object that does not exist: %w", serial, e.URI, ErrReplace)
		case e.HasHash && cur.hash != e.Hash:
			return fmt.Errorf("delta %d: %s names hash %x, the object has %x: %w", serial, e.URI, e.Hash[:8], cur.hash[:8], ErrReplace)
		case !e.HasHash && exists:
			return fmt.Errorf("delta %d: %s: %w", serial, e.URI, ErrOverwrite)
		case !e.HasHash && e.Withdraw:
			return fmt.Errorf("delta %d: withdraw of %s without hash: %w", serial, e.URI, ErrReplace)
		}
		if e.Withdraw {
			o.changes[e.URI] = nil
			return nil
		}
		c := bytes.Clone(e.Content)
		o.changes[e.URI] = &object{hash: sha256.Sum256(c), content: c}
		return nil
	})
}

// commit applies the changes to the base.
func (o *overlay) commit() {
	for uri, c := range o.changes {
		if c == nil {
			delete(o.base, uri)
		} else {
			o.base[uri] = *c
		}
	}
}

// transcode returns a fetched file of upstream session u in both
// formats, under the served sessions xs (XML) and bs (.bin). The bytes as
// fetched are kept where their session is the served one; otherwise the
// file is regenerated, canonical and deterministic.
func transcode(b []byte, f irpki.Format, u, xs, bs string, lim rrdpxml.Limits) (xml, bin []byte, err error) {
	conv := func(to func(io.Writer, io.Reader, irpki.Options) (*irpki.Result, error), in []byte, session string) ([]byte, error) {
		var buf bytes.Buffer
		buf.Grow(len(in))
		if _, err := to(&buf, bytes.NewReader(in), irpki.Options{Limits: lim, Session: session}); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if f == irpki.FormatXML {
		if bin, err = conv(irpki.XMLToBin, b, bs); err != nil {
			return nil, nil, fmt.Errorf("transcode to .bin: %w", err)
		}
		if xs == u {
			return b, bin, nil
		}
		if xml, err = conv(irpki.BinToXML, bin, xs); err != nil {
			return nil, nil, fmt.Errorf("transcode to XML: %w", err)
		}
		return xml, bin, nil
	}
	if xml, err = conv(irpki.BinToXML, b, xs); err != nil {
		return nil, nil, fmt.Errorf("transcode to XML: %w", err)
	}
	if bs == u {
		return xml, b, nil
	}
	if bin, err = conv(irpki.XMLToBin, xml, bs); err != nil {
		return nil, nil, fmt.Errorf("transcode to .bin: %w", err)
	}
	return xml, bin, nil
}
