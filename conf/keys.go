package conf

import (
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps the dotted path of every key and table header in a
// document to its line: "server.listen", "repository[1].origin",
// "cache.redis". Array tables are indexed from 0 in the order they appear.
type keyLines map[string]int

// scalar is a value in the document: its kind and text, and the line of
// its key.
type scalar struct {
	kind  unstable.Kind
	data  string
	elems []unstable.Kind // of an array
}

// document is what indexKeys finds: the lines of the keys and the values
// of the key-values.
type document struct {
	lines  keyLines
	values map[string]scalar
}

// indexKeys scans data with go-toml's parser and records the line of every
// key. On a syntax error it returns what it found before it, and the error.
func indexKeys(data []byte) (*document, error) {
	doc := &document{lines: make(keyLines), values: make(map[string]scalar)}
	lines := doc.lines
	var p unstable.Parser
	p.Reset(data)
	counts := make(map[string]int) // array table path -> elements seen
	var arrays []string            // array table paths, in order
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			parts, line := keyParts(&p, it)
			path := resolveArrays(strings.Join(parts, "."), arrays, counts)
			if e.Kind == unstable.ArrayTable {
				if counts[path] == 0 {
					arrays = append(arrays, path)
				}
				prefix = fmt.Sprintf("%s[%d]", path, counts[path])
				counts[path]++
			} else {
				prefix = path
			}
			lines[prefix] = line
		case unstable.KeyValue:
			indexKeyValue(&p, e, prefix, doc)
		}
	}
	return doc, p.Error()
}

// resolveArrays rewrites a table path that lies under an array table
// ("repository.x") to name the array's current element ("repository[2].x").
func resolveArrays(path string, arrays []string, counts map[string]int) string {
	for i := len(arrays) - 1; i >= 0; i-- {
		a := arrays[i]
		if strings.HasPrefix(path, a+".") {
			return fmt.Sprintf("%s[%d]%s", a, counts[a]-1, path[len(a):])
		}
	}
	return path
}

// keyParts returns the parts of a key and the line of its first part.
func keyParts(p *unstable.Parser, it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

// indexKeyValue records a key-value and, for an inline table or an array
// of them, the keys inside.
func indexKeyValue(p *unstable.Parser, kv *unstable.Node, prefix string, doc *document) {
	lines := doc.lines
	parts, line := keyParts(p, kv.Key())
	path := strings.Join(parts, ".")
	if prefix != "" {
		path = prefix + "." + path
	}
	// Record the tables a dotted key opens ("redis.url" opens "redis").
	for i := len(path) - 1; i > len(prefix); i-- {
		if path[i] == '.' {
			if _, ok := lines[path[:i]]; !ok {
				lines[path[:i]] = line
			}
		}
	}
	lines[path] = line
	indexValue(p, kv.Value(), path, doc)
}

func indexValue(p *unstable.Parser, v *unstable.Node, path string, doc *document) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			indexKeyValue(p, it.Node(), path, doc)
		}
	case unstable.Array:
		s := scalar{kind: unstable.Array}
		it := v.Children()
		for i := 0; it.Next(); i++ {
			n := it.Node()
			s.elems = append(s.elems, n.Kind)
			if n.Kind == unstable.InlineTable {
				elem := fmt.Sprintf("%s[%d]", path, i)
				doc.lines[elem] = doc.lines[path]
				indexValue(p, n, elem, doc)
			}
		}
		doc.values[path] = s
	default:
		doc.values[path] = scalar{kind: v.Kind, data: string(v.Data)}
	}
}

// has reports whether the document set path.
func (l keyLines) has(path string) bool {
	_, ok := l[path]
	return ok
}

// line returns the line of path, or of the nearest table above it that the
// document holds, or 1.
func (l keyLines) line(path string) int {
	for {
		if n, ok := l[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 1
		}
		path = path[:i]
	}
}

// at returns the key recorded at line whose path ends in suffix (the key
// go-toml reports, without array indexes), preferring the longest path.
func (l keyLines) at(line int, suffix string) string {
	best := ""
	for k, n := range l {
		if n != line || !strings.HasSuffix(stripIndexes(k), suffix) {
			continue
		}
		if len(k) > len(best) || (len(k) == len(best) && k < best) {
			best = k
		}
	}
	return best
}

// stripIndexes removes the array indexes of a path: "repository[1].x" ->
// "repository.x".
func stripIndexes(path string) string {
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}
