package diskstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// writeFile writes b to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A reader sees
// the old file or the new one, never a part of it, even after a crash.
func writeFile(path string, b []byte) error { return write(path, b, true) }

// write writes b to path atomically, as writeFile does; without durable,
// neither the file nor its directory is synced: a blob whose sync waits
// for one syncfs before the head that names it (Store.PutBlob,
// syncBlobs). Until then a crash of the machine may lose or tear a blob no
// head names yet, which GC removes; a torn one is never served, since the
// cache checks every blob read from a tier against its key.
func write(path string, b []byte, durable bool) error {
	return writeWith(path, durable, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// writeWith writes to path atomically what fill writes to the temporary
// file, as write does.
func writeWith(path string, durable bool, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpStart+"*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	if !durable {
		return nil
	}
	return syncDir(dir)
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// removeTemps removes the temporary files a crash left in dir and reports
// how many there were.
func removeTemps(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("diskstore: list %s: %w", dir, err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpStart) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("diskstore: remove %s: %w", p, err)
		}
		n++
	}
	return n, nil
}
