// Package irpkitest writes synthetic RRDP (RFC 8182) snapshot and delta XML
// with random object bytes, deterministically from a seed, for the tests
// and benchmarks of the codecs. The objects are not RPKI objects: package
// repotest builds signed repositories that relying parties accept.
package irpkitest

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
)

// Spec describes a synthetic snapshot. The zero value of a field takes the
// default in parentheses.
type Spec struct {
	Seed    uint64
	Serial  uint64 // (1)
	Objects int    // (1000)
	MinSize int    // smallest object in bytes (1024)
	MaxSize int    // largest object in bytes (4096)
	// Dirs is the number of publication points (Objects/20+1).
	Dirs int
	// Wrap, when positive, wraps base64 content at that many columns with
	// "\n", as some publication servers do.
	Wrap int
	// Interleave spreads consecutive objects over publication points
	// instead of keeping each point's objects together.
	Interleave bool
}

func (s Spec) withDefaults() Spec {
	if s.Serial == 0 {
		s.Serial = 1
	}
	if s.Objects == 0 {
		s.Objects = 1000
	}
	if s.MinSize == 0 {
		s.MinSize = 1024
	}
	if s.MaxSize < s.MinSize {
		s.MaxSize = max(s.MinSize, 4096)
	}
	if s.Dirs == 0 {
		s.Dirs = s.Objects/20 + 1
	}
	return s
}

// Session returns the session id of the snapshots made from seed.
func Session(seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x5e55))
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Object is one synthetic object.
type Object struct {
	URI     string
	Content []byte
}

// source yields the objects of a spec one at a time, so that a snapshot
// of gigabytes needs no memory.
type source struct {
	spec Spec
	r    *rand.Rand
	per  int
	i    int
	buf  []byte
}

var exts = []string{"roa", "roa", "roa", "mft", "crl", "cer", "asa"}

func newSource(spec Spec) *source {
	spec = spec.withDefaults()
	return &source{spec: spec, r: rand.New(rand.NewPCG(spec.Seed, 1)), per: (spec.Objects + spec.Dirs - 1) / spec.Dirs}
}

// next returns the next object; its content is valid until the next call.
func (s *source) next() (uri string, content []byte, ok bool) {
	if s.i >= s.spec.Objects {
		return "", nil, false
	}
	i := s.i
	s.i++
	dir := i / s.per
	if s.spec.Interleave {
		dir = i % s.spec.Dirs
	}
	n := s.spec.MinSize + s.r.IntN(s.spec.MaxSize-s.spec.MinSize+1)
	s.buf = s.buf[:0]
	for j := 0; j < n; j += 8 {
		v := s.r.Uint64()
		for k := 0; k < 8 && j+k < n; k++ {
			s.buf = append(s.buf, byte(v>>(8*k)))
		}
	}
	return fmt.Sprintf("rsync://rpki.example.net/repo/ca%05d/obj%07d.%s", dir, i, exts[i%len(exts)]), s.buf, true
}

// Objects returns the objects of the snapshot spec describes, in order.
func Objects(spec Spec) []Object {
	var objs []Object
	src := newSource(spec)
	for {
		uri, c, ok := src.next()
		if !ok {
			return objs
		}
		objs = append(objs, Object{URI: uri, Content: append([]byte(nil), c...)})
	}
}

// WriteSnapshot writes the snapshot XML that spec describes. It streams:
// memory stays small whatever the size.
func WriteSnapshot(w io.Writer, spec Spec) error {
	spec = spec.withDefaults()
	bw := bufio.NewWriterSize(w, 256<<10)
	fmt.Fprintf(bw, "<snapshot xmlns=\"http://www.ripe.net/rpki/rrdp\" version=\"1\" session_id=\"%s\" serial=\"%d\">\n", Session(spec.Seed), spec.Serial)
	src := newSource(spec)
	var enc []byte
	for {
		uri, c, ok := src.next()
		if !ok {
			break
		}
		enc = base64.StdEncoding.AppendEncode(enc[:0], c)
		fmt.Fprintf(bw, "  <publish uri=\"%s\">", uri)
		if spec.Wrap > 0 {
			for len(enc) > 0 {
				k := min(spec.Wrap, len(enc))
				bw.WriteString("\n    ")
				bw.Write(enc[:k])
				enc = enc[k:]
			}
			bw.WriteString("\n  ")
		} else {
			bw.Write(enc)
		}
		bw.WriteString("</publish>\n")
	}
	bw.WriteString("</snapshot>\n")
	return bw.Flush()
}

// WriteDelta writes a delta to serial from the snapshot of spec: every
// step-th object replaced by new random bytes, every step-th object
// (offset by one) withdrawn, and adds new objects published.
func WriteDelta(w io.Writer, spec Spec, serial uint64, step, adds int) error {
	spec = spec.withDefaults()
	objs := Objects(spec)
	r := rand.New(rand.NewPCG(spec.Seed, serial))
	bw := bufio.NewWriterSize(w, 256<<10)
	fmt.Fprintf(bw, "<delta xmlns=\"http://www.ripe.net/rpki/rrdp\" version=\"1\" session_id=\"%s\" serial=\"%d\">\n", Session(spec.Seed), serial)
	newContent := func() string {
		c := make([]byte, spec.MinSize+r.IntN(spec.MaxSize-spec.MinSize+1))
		for i := range c {
			c[i] = byte(r.Uint32())
		}
		return base64.StdEncoding.EncodeToString(c)
	}
	for i := 0; i+1 < len(objs); i += step {
		h := sha256.Sum256(objs[i].Content)
		fmt.Fprintf(bw, "  <publish uri=\"%s\" hash=\"%x\">%s</publish>\n", objs[i].URI, h, newContent())
		h = sha256.Sum256(objs[i+1].Content)
		fmt.Fprintf(bw, "  <withdraw uri=\"%s\" hash=\"%x\"/>\n", objs[i+1].URI, h)
	}
	for i := 0; i < adds; i++ {
		fmt.Fprintf(bw, "  <publish uri=\"rsync://rpki.example.net/repo/new%03d/added%05d.roa\">%s</publish>\n", i%7, i, newContent())
	}
	bw.WriteString("</delta>\n")
	return bw.Flush()
}
