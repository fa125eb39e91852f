package conf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// BenchmarkParse parses the IXP example (five repositories): indexing,
// checking, decoding, defaults and validation.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "examples", "mirror.toml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data, "mirror.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeOnly is the baseline: go-toml's strict decoding of the
// same file alone.
func BenchmarkDecodeOnly(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "deploy", "examples", "mirror.toml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var c Config
		if err := toml.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
	}
}
