package conf

import (
	_ "embed"
	"slices"
)

//go:embed example.toml
var example []byte

// Example returns a commented example configuration that Parse accepts.
// It shows every key: the optional ones commented out.
func Example() []byte { return slices.Clone(example) }
