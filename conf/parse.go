package conf

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// maxFile caps the size of a configuration file.
const maxFile = 16 << 20

// Load reads and parses the configuration file at path. Relative paths in
// it (state_dir, ca_file, tls_cert, ...) are taken from the directory of
// path.
func Load(path string) (*Config, error) {
	data, err := readCapped(path, maxFile)
	if err != nil {
		return nil, fmt.Errorf("conf: read %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse parses a configuration named name (for messages, and whose
// directory relative paths start from), fills the defaults and validates
// it. The files it names are read and checked; the Redis password is taken
// from RRDP_PROXY_REDIS_PASSWORD. The error lists every mistake found, each
// an *Error naming the line and the key.
func Parse(data []byte, name string) (*Config, error) {
	p := &parser{file: name, dir: filepath.Dir(name), data: data}
	doc, err := indexKeys(data)
	p.lines = doc.lines
	if err != nil {
		p.decodeError(err)
		return nil, p.result()
	}
	// Check keys and kinds of values first, to report every mistake with
	// its key, rather than go-toml's first.
	p.checkKeys(doc)
	if len(p.errs) > 0 {
		return nil, p.result()
	}
	cfg := &Config{File: name}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) {
			p.decodeError(err)
			return nil, p.result()
		}
		// checkKeys found no unknown key, so this does not happen; the
		// document was decoded in full: report and go on validating.
		for i := range strict.Errors {
			line, _ := strict.Errors[i].Position()
			p.add(line, p.locate(&strict.Errors[i]), errors.New("unknown key"))
		}
	}
	fillDefaults(reflect.ValueOf(cfg).Elem(), reflect.ValueOf(defaults()), "", doc.lines)
	p.validate(cfg)
	if err := p.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// defaults is the configuration of an empty file, one default element in
// each array and the [cache.redis] table present.
func defaults() Config {
	r := defaultRedis()
	c := Config{Server: defaultServer(), Cache: defaultCache(), Repositories: []Repository{defaultRepository()}}
	c.Cache.Redis = &r
	v := defaultValidate()
	c.Validate = &v
	cp := defaultCompact()
	c.Compact = &cp
	return c
}

// parser collects the errors of one Parse.
type parser struct {
	file  string
	dir   string
	data  []byte
	lines keyLines
	errs  []error

	allowHTTPBase bool // server.allow_http_base, for the bases
}

func (p *parser) add(line int, key string, err error) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Err: err})
}

// errorf records a mistake about the key at path.
func (p *parser) errorf(path, format string, args ...any) {
	p.add(p.lines.line(path), path, fmt.Errorf(format, args...))
}

func (p *parser) result() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	return errors.Join(p.errs...)
}

// locate names the key of a go-toml error from its line.
func (p *parser) locate(de *toml.DecodeError) string {
	line, _ := de.Position()
	suffix := strings.Join(de.Key(), ".")
	if k := p.lines.at(line, suffix); k != "" {
		return k
	}
	if k := p.lines.at(line, ""); k != "" {
		return k
	}
	if suffix != "" {
		return suffix
	}
	return "syntax"
}

// decodeError records an error of go-toml's parser or decoder.
func (p *parser) decodeError(err error) {
	var perr *unstable.ParserError
	if errors.As(err, &perr) && len(perr.Highlight) > 0 {
		off := cap(p.data) - cap(perr.Highlight)
		if off >= 0 && off <= len(p.data) {
			line := 1 + bytes.Count(p.data[:off], []byte("\n"))
			col := off - bytes.LastIndexByte(p.data[:off], '\n')
			key := p.lines.at(line, "")
			if key == "" {
				key = "syntax"
			}
			p.add(line, key, fmt.Errorf("%s (column %d)", perr.Message, col))
			return
		}
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		p.add(1, "syntax", err)
		return
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	p.add(line, p.locate(de), fmt.Errorf("%s (column %d)", msg, col))
}

var durationType = reflect.TypeFor[Duration]()

// fillDefaults sets every field of dst whose key the document does not
// hold to its value in def. Tables absent from the document stay absent
// (a nil *Redis).
func fillDefaults(dst, def reflect.Value, path string, lines keyLines) {
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		key := name
		if path != "" {
			key = path + "." + name
		}
		d, v := def.Field(i), dst.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			fillDefaults(v, d, key, lines)
		case f.Type.Kind() == reflect.Pointer:
			if !v.IsNil() {
				fillDefaults(v.Elem(), d.Elem(), key, lines)
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			for j := range v.Len() {
				fillDefaults(v.Index(j), d.Index(0), fmt.Sprintf("%s[%d]", key, j), lines)
			}
		case !lines.has(key) && f.Type.Kind() == reflect.Slice:
			v.Set(reflect.AppendSlice(reflect.MakeSlice(f.Type, 0, d.Len()), d))
		case !lines.has(key):
			v.Set(d)
		}
	}
}

// tomlName returns the key of a field, or "" for fields outside the file.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// path resolves a file name of the configuration against its directory.
func (p *parser) path(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(p.dir, name)
}
