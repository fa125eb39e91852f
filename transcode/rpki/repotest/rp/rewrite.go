package rp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Rewrite writes src to dst with every occurrence of old replaced by new,
// atomically (a temporary file renamed over dst), so that a server
// reading dst meanwhile sees the old or the new file, never a part.
//
// Tests use it to give a follower its origin's view of a repository whose
// files name the public address of a proxy: the notification rewritten to
// name the files at the origin, as a reverse proxy reaches its
// publication server by an internal name; and a TAL naming the trust
// anchor certificate where the origin serves it.
func Rewrite(dst, src, old, new string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".rewrite-*")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", dst, err)
	}
	_, werr := tmp.Write(bytes.ReplaceAll(b, []byte(old), []byte(new)))
	cerr := tmp.Close()
	if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rewrite %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("rewrite %s: %w", dst, err)
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
