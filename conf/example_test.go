package conf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestExampleParses(t *testing.T) {
	c, err := Parse(Example(), "example.toml")
	if err != nil {
		t.Fatalf("Parse(Example()): %v", err)
	}
	if len(c.Repositories) == 0 {
		t.Fatal("the example has no repository")
	}
}

// commentedKey matches a commented-out key or table header of the example.
var commentedKey = regexp.MustCompile(`^# (\[\[?[a-z_.]+\]\]?|[a-z_]+ = .*)$`)

// TestExampleCoversEveryKey checks that the example shows every key of the
// reference, set or commented out, in its table.
func TestExampleCoversEveryKey(t *testing.T) {
	var un bytes.Buffer
	for line := range strings.Lines(string(Example())) {
		line = strings.TrimRight(line, "\n")
		if commentedKey.MatchString(line) {
			line = line[2:]
		}
		un.WriteString(line + "\n")
	}
	doc, err := indexKeys(un.Bytes())
	if err != nil {
		t.Fatalf("the example with its keys uncommented is not TOML: %v", err)
	}
	shown := make(map[string]bool)
	for k := range doc.lines {
		shown[stripIndexes(k)] = true
	}
	known := make(map[string]bool)
	for _, k := range Keys() {
		known[k.Path()] = true
		if !shown[k.Path()] {
			t.Errorf("the example does not show %s", k.Path())
		}
	}
	var extra []string
	for k := range shown {
		if _, isValue := doc.values[k]; !known[k] && isValue {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		t.Errorf("the example shows %s, which is not a key", k)
	}
}

var updateReadme = flag.Bool("update-readme", false, "rewrite the configuration reference in README.md")

// TestReferenceInReadme checks that the README's configuration reference is
// Reference(), once the README has one.
func TestReferenceInReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference()
	heading := []byte("## Configuration reference\n")
	i := bytes.Index(readme, heading)
	if i < 0 {
		t.Fatal("README.md has no configuration reference: paste the output of `rrdp-proxy config reference`")
	}
	section := readme[i:]
	if j := bytes.Index(section[len(heading):], []byte("\n## ")); j >= 0 {
		section = section[:len(heading)+j+1]
	}
	if *updateReadme {
		out := slices.Concat(readme[:i], ref, readme[i+len(section):])
		if err := os.WriteFile(filepath.Join("..", "README.md"), out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(bytes.TrimSpace(section), bytes.TrimSpace(ref)) {
		t.Errorf("README.md's configuration reference differs from conf.Reference(): regenerate it with\n" +
			"  go test ./conf -run TestReferenceInReadme -update-readme")
	}
}

func TestReferenceListsEveryKey(t *testing.T) {
	ref := string(Reference())
	for _, k := range Keys() {
		if k.Doc == "" {
			t.Errorf("%s has no doc tag", k.Path())
		}
		if !strings.Contains(ref, "| `"+k.Name+"` | "+k.Type+" |") {
			t.Errorf("the reference has no row for %s", k.Path())
		}
	}
	for _, table := range []string{"### `[server]`", "### `[cache]`", "### `[cache.redis]`", "### `[[repository]]`"} {
		if !strings.Contains(ref, table) {
			t.Errorf("the reference has no %s", table)
		}
	}
}

// TestReadmeQuickStart parses the configuration the README's quick start
// shows, so that it never drifts from what Parse accepts.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "## Quick start")
	if i < 0 {
		t.Fatal("README.md has no quick start section")
	}
	s = s[i:]
	start := strings.Index(s, "```toml\n")
	if start < 0 {
		t.Fatal("README.md's quick start has no toml block")
	}
	s = s[start+len("```toml\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("README.md's quick start toml block is not closed")
	}
	c, err := Parse([]byte(s[:end]), "README.md quick start")
	if err != nil {
		t.Fatalf("the README's quick-start configuration: %v", err)
	}
	if len(c.Repositories) != 1 || c.Repositories[0].Name != "ripe" {
		t.Errorf("got %d repositories, want the one named ripe", len(c.Repositories))
	}
}
