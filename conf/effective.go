package conf

import (
	"fmt"
	"reflect"
	"strings"
)

// Effective writes the configuration as TOML with every key at its
// effective value, defaults included, and a comment naming the URLs each
// repository is served at. Parse accepts it and yields the same
// configuration. The Redis password is not written.
func (c *Config) Effective() []byte {
	var b strings.Builder
	var write func(v reflect.Value, table string, header string)
	write = func(v reflect.Value, table, header string) {
		t := v.Type()
		if header != "" {
			fmt.Fprintf(&b, "\n%s\n", header)
		}
		var subs []func()
		for i := range t.NumField() {
			f := t.Field(i)
			name := tomlName(f)
			if name == "" {
				continue
			}
			path := name
			if table != "" {
				path = table + "." + name
			}
			fv := v.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != durationType:
				subs = append(subs, func() { write(fv, path, "["+path+"]") })
			case f.Type.Kind() == reflect.Pointer:
				if !fv.IsNil() {
					subs = append(subs, func() { write(fv.Elem(), path, "["+path+"]") })
				}
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				subs = append(subs, func() {
					for j := range fv.Len() {
						if r, ok := fv.Index(j).Addr().Interface().(*Repository); ok {
							fmt.Fprintf(&b, "\n# %s", r.Name)
							for _, u := range c.URLs(r) {
								fmt.Fprintf(&b, "\n#   %s", u)
							}
							b.WriteByte('\n')
						}
						write(fv.Index(j), path, "[["+path+"]]")
					}
				})
			default:
				fmt.Fprintf(&b, "%s = %s\n", name, formatValue(fv))
			}
		}
		for _, s := range subs {
			s()
		}
	}
	write(reflect.ValueOf(c).Elem(), "", "")
	return []byte(strings.TrimPrefix(b.String(), "\n"))
}

// URLs returns the public URLs of r's notification files, one per format.
func (c *Config) URLs(r *Repository) []string {
	base := c.BaseURI(r)
	var out []string
	for _, f := range r.Formats {
		out = append(out, base+"notification."+f)
	}
	return out
}
