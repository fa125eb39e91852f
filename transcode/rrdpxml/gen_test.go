package rrdpxml

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// genSpec describes a synthetic snapshot or delta.
type genSpec struct {
	seed    uint64
	kind    Kind // KindSnapshot or KindDelta
	size    int  // stop adding objects once the XML reaches this many bytes
	objects int  // or once there are this many objects (0: no cap)
	minObj  int  // object size range, bytes
	maxObj  int
	dirs    int // publication points the URIs spread over
	wrap    int // base64 line length; 0 for one line
}

func (g genSpec) withDefaults() genSpec {
	if g.kind == 0 {
		g.kind = KindSnapshot
	}
	if g.minObj == 0 {
		g.minObj, g.maxObj = 1024, 4096
	}
	if g.dirs == 0 {
		g.dirs = 1000
	}
	return g
}

const genSession = "2f1b9e8c-4d1a-4c6e-9b5e-0c7d3a2f8e11"

// generate writes the XML described by g, in a layout unlike the Writer's
// (no indentation, optional wrapping), and returns it with the number of
// elements. Deterministic for a given spec.
func generate(g genSpec) ([]byte, int) {
	g = g.withDefaults()
	rng := rand.New(rand.NewPCG(g.seed, g.seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	grow := g.size
	if g.objects > 0 {
		grow = min(grow, g.objects*(g.maxObj*4/3+256))
	}
	b.Grow(grow + 64<<10)
	fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"%s\" version=\"1\" session_id=\"%s\" serial=\"42\">\n",
		g.kind, Namespace, genSession)
	obj := make([]byte, g.maxObj)
	enc := make([]byte, base64.StdEncoding.EncodedLen(g.maxObj))
	n := 0
	for b.Len() < g.size && (g.objects == 0 || n < g.objects) {
		size := g.minObj + rng.IntN(g.maxObj-g.minObj+1)
		for i := range obj[:size] {
			obj[i] = byte(rng.Uint32())
		}
		uri := "rsync://rpki.example.net/repo/" + strconv.Itoa(rng.IntN(g.dirs)) + "/" + strconv.Itoa(n) + ".roa"
		withdraw := g.kind == KindDelta && n%10 == 9
		hash := ""
		if g.kind == KindDelta && n%3 != 0 {
			hash = fmt.Sprintf(` hash="%x"`, obj[:32])
		}
		if withdraw {
			fmt.Fprintf(&b, "<withdraw uri=\"%s\" hash=\"%x\"/>\n", uri, obj[:32])
			n++
			continue
		}
		e := enc[:base64.StdEncoding.EncodedLen(size)]
		base64.StdEncoding.Encode(e, obj[:size])
		fmt.Fprintf(&b, "<publish uri=\"%s\"%s>", uri, hash)
		if g.wrap == 0 {
			b.Write(e)
		} else {
			b.WriteByte('\n')
			for len(e) > 0 {
				l := min(g.wrap, len(e))
				b.Write(e[:l])
				b.WriteByte('\n')
				e = e[l:]
			}
		}
		b.WriteString("</publish>\n")
		n++
	}
	fmt.Fprintf(&b, "</%s>\n", g.kind)
	return b.Bytes(), n
}
