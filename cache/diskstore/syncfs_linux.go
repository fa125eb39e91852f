package diskstore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// canSyncfs: syncfs(2) makes every file of a file system durable in one
// call (Linux 2.6.39 and later).
const canSyncfs = true

// syncfs makes durable every write to the file system that holds dir.
func syncfs(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	for {
		err := unix.Syncfs(int(d.Fd()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", dir, err)
		}
		return nil
	}
}
