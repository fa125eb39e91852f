package conf

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

var sizeType = reflect.TypeFor[Size]()

// fieldType returns the Go type of the field a key path (without array
// indexes) decodes into, and false for a key that has none.
func fieldType(path string) (reflect.Type, bool) {
	t := reflect.TypeFor[Config]()
	for part := range strings.SplitSeq(path, ".") {
		for t.Kind() == reflect.Pointer || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct) {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			return nil, false
		}
		found := false
		for i := range t.NumField() {
			if f := t.Field(i); tomlName(f) == part {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return t, true
}

// checkKeys reports the keys no field takes, the values of the wrong kind
// and the durations and sizes that do not parse, each with its line.
func (p *parser) checkKeys(doc *document) {
	keys := make([]string, 0, len(doc.lines))
	for k := range doc.lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := doc.lines[keys[i]], doc.lines[keys[j]]
		return li < lj || (li == lj && keys[i] < keys[j])
	})
	reported := make(map[string]bool)
	for _, k := range keys {
		if reported[parentKey(k)] {
			reported[k] = true // under an unknown table
			continue
		}
		plain := stripIndexes(k)
		if plain == "cache.redis.password" {
			p.errorf(k, "the password does not belong in the file: set the environment variable %s", RedisPasswordEnv)
			reported[k] = true
			continue
		}
		t, ok := fieldType(plain)
		if !ok {
			what := "unknown key"
			if _, isValue := doc.values[k]; !isValue {
				what = "unknown table"
			}
			if s := suggest(plain); s != "" {
				what += fmt.Sprintf(" (did you mean %s?)", s)
			}
			p.errorf(k, "%s", what)
			reported[k] = true
			continue
		}
		v, isValue := doc.values[k]
		if !isValue {
			continue
		}
		if err := checkValue(t, v); err != nil {
			p.errorf(k, "%v", err)
			reported[k] = true
		}
	}
}

func parentKey(k string) string {
	if i := strings.LastIndexAny(k, ".["); i >= 0 {
		return k[:i]
	}
	return ""
}

// checkValue checks that a TOML value fits a field of type t.
func checkValue(t reflect.Type, v scalar) error {
	switch {
	case t == durationType:
		if v.kind != unstable.String {
			return fmt.Errorf("want a duration string such as \"90s\", got %s", describe(v))
		}
		var d Duration
		return d.UnmarshalText([]byte(v.data))
	case t == sizeType:
		if v.kind != unstable.String && v.kind != unstable.Integer {
			return fmt.Errorf("want a size string such as \"512MiB\", got %s", describe(v))
		}
		var z Size
		return z.UnmarshalText([]byte(strings.ReplaceAll(v.data, "_", "")))
	}
	switch t.Kind() {
	case reflect.String:
		if v.kind != unstable.String {
			return fmt.Errorf("want a string, got %s", describe(v))
		}
	case reflect.Int:
		if v.kind != unstable.Integer {
			return fmt.Errorf("want an integer, got %s", describe(v))
		}
	case reflect.Float64:
		if v.kind != unstable.Float && v.kind != unstable.Integer {
			return fmt.Errorf("want a number, got %s", describe(v))
		}
	case reflect.Bool:
		if v.kind != unstable.Bool {
			return fmt.Errorf("want true or false, got %s", describe(v))
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			if v.kind == unstable.Array && !slices.ContainsFunc(v.elems, func(k unstable.Kind) bool { return k != unstable.InlineTable }) {
				return nil // an array of inline tables
			}
			return fmt.Errorf("want tables, got %s", describe(v))
		}
		if v.kind != unstable.Array {
			return fmt.Errorf("want a list such as [\"a\", \"b\"], got %s", describe(v))
		}
		for _, e := range v.elems {
			if e != unstable.String {
				return fmt.Errorf("want a list of strings, got a list holding %s", kindName(e))
			}
		}
	case reflect.Pointer, reflect.Struct:
		return fmt.Errorf("want a table, got %s", kindName(v.kind))
	}
	return nil
}

// suggest returns a known key close to an unknown one: a typo of its
// last part, within two edits.
func suggest(path string) string {
	parent, last := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, last = path[:i], path[i+1:]
	}
	t := reflect.TypeFor[Config]()
	if parent != "" {
		var ok bool
		if t, ok = fieldType(parent); !ok {
			return ""
		}
	}
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	best, bestD := "", 3
	for i := range t.NumField() {
		if n := tomlName(t.Field(i)); n != "" {
			if d := editDistance(last, n); d < bestD {
				best, bestD = n, d
			}
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "the string"
	case unstable.Integer:
		return "the integer"
	case unstable.Float:
		return "the number"
	case unstable.Bool:
		return "the boolean"
	case unstable.Array:
		return "a list"
	case unstable.InlineTable:
		return "a table"
	}
	return "a " + strings.ToLower(k.String())
}

// describe writes a value for a message: `the string "x"`, `the integer 5`.
func describe(v scalar) string {
	switch v.kind {
	case unstable.String:
		return fmt.Sprintf("the string %q", v.data)
	case unstable.Array, unstable.InlineTable:
		return kindName(v.kind)
	}
	return kindName(v.kind) + " " + v.data
}
