package rpki

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Source gives a validator the current objects of the repositories by
// their rsync URI (rsync://host/path). Object returns an error wrapping
// fs.ErrNotExist when the source has no such object; it may return at most
// max bytes and must fail with an error wrapping ErrTooLarge beyond. A
// Validator keeps none of the bytes Object returns once the run that read
// them ends (what outlives a run, the CA certificates, is copied), so a
// Source may hand out views of buffers it lets go of later.
type Source interface {
	Object(uri string, max int64) ([]byte, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(uri string, max int64) ([]byte, error)

// Object calls f.
func (f SourceFunc) Object(uri string, max int64) ([]byte, error) { return f(uri, max) }

// Hasher is implemented by a Source that knows the SHA-256 of its objects
// without reading them (the follower's state does). A validator that
// reuses the result of an unchanged publication point then checks the
// manifest's files against their hashes instead of reading them again.
type Hasher interface {
	ObjectHash(uri string) ([sha256.Size]byte, error)
}

// ErrTooLarge is wrapped by the errors of a Source for an object larger
// than asked for.
var ErrTooLarge = errors.New("object too large")

// MapSource is a Source over objects held in memory by URI.
type MapSource map[string][]byte

// Object returns m[uri].
func (m MapSource) Object(uri string, max int64) ([]byte, error) {
	b, ok := m[uri]
	if !ok {
		return nil, fmt.Errorf("object %s: %w", uri, fs.ErrNotExist)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("object %s: %d bytes: %w (max %d)", uri, len(b), ErrTooLarge, max)
	}
	return b, nil
}

// ObjectHash returns the SHA-256 of m[uri].
func (m MapSource) ObjectHash(uri string) ([sha256.Size]byte, error) {
	b, ok := m[uri]
	if !ok {
		return [sha256.Size]byte{}, fmt.Errorf("object %s: %w", uri, fs.ErrNotExist)
	}
	return sha256.Sum256(b), nil
}

// SyncMarker is the file that marks a directory written by rrdp-proxy sync.
const SyncMarker = ".rrdp-proxy-sync"

// TreeSource is a Source over directories that hold objects as
// DIR/host/path for rsync://host/path: what rrdp-proxy sync --out writes,
// and the layout of rpki-client's cache. A URI is looked up in each root in
// turn.
type TreeSource struct {
	Roots []string
}

// OpenTree returns a TreeSource for dirs. A dir that holds the marker of
// rrdp-proxy sync (SyncMarker) is a root; a dir whose subdirectories hold
// it (several repositories synced side by side) gives those
// subdirectories, in name order; any other dir is a root as it is.
func OpenTree(dirs ...string) (*TreeSource, error) {
	t := &TreeSource{}
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("open tree: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("open tree %s: not a directory", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, SyncMarker)); err == nil {
			t.Roots = append(t.Roots, dir)
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("open tree: %w", err)
		}
		n := len(t.Roots)
		for _, e := range ents {
			sub := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(sub, SyncMarker)); e.IsDir() && err == nil {
				t.Roots = append(t.Roots, sub)
			}
		}
		if len(t.Roots) == n {
			t.Roots = append(t.Roots, dir)
		}
	}
	return t, nil
}

// URIPath maps rsync://host/path to the relative file path host/path,
// refusing URIs that are not rsync or whose path would leave the tree.
func URIPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, "rsync") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("object URI %q: not an rsync URI", uri)
	}
	rel := u.Host + u.Path
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." || seg == SyncMarker {
			return "", fmt.Errorf("object URI %q: bad path", uri)
		}
	}
	return filepath.FromSlash(rel), nil
}

// Object reads the file of uri in the first root that has it, at most max
// bytes.
func (t *TreeSource) Object(uri string, max int64) ([]byte, error) {
	rel, err := URIPath(uri)
	if err != nil {
		return nil, err
	}
	for _, root := range t.Roots {
		b, err := readCapped(filepath.Join(root, rel), max)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", uri, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("object %s: %w", uri, fs.ErrNotExist)
}

// readCapped reads a regular file of at most max bytes.
func readCapped(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes: %w (max %d)", name, st.Size(), ErrTooLarge, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w (max %d)", name, ErrTooLarge, max)
	}
	return b, nil
}
