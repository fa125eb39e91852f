package rp

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// LockPort takes a lock on a fixed TCP port shared by every process of
// the machine (flock(2) on a file in the temporary directory), waiting up
// to wait for the holder, and returns its release. Tests of several
// packages need port 3000 (the Krill data set names it) and go test runs
// packages at once: a bind alone does not keep the port while a test
// closes its listener to let a child process (nginx, rrdp-proxy serve)
// bind it, so such tests hold the lock for their whole run. NewOrigin
// takes it for a fixed Port.
func LockPort(port int, wait time.Duration) (unlock func(), err error) {
	name := filepath.Join(os.TempDir(), "rrdp-proxy-test-port-"+strconv.Itoa(port)+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock port %d: %w", port, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock port %d (%s), waited %v: %w", port, name, wait, err)
		}
		time.Sleep(100 * time.Millisecond) // flock has no timeout: poll
	}
}
