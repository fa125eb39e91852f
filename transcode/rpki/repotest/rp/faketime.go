package rp

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// libfaketimePatterns locate libfaketime (Debian package faketime).
var libfaketimePatterns = []string{
	"/usr/lib/*/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
	"/usr/lib64/faketime/libfaketime.so.1",
	"/usr/local/lib/faketime/libfaketime.so.1",
	"/usr/local/lib/*/faketime/libfaketime.so.1",
}

// errNoLibfaketime is returned when libfaketime is not installed.
var errNoLibfaketime = errors.New("libfaketime.so.1 not found (apt-get install faketime)")

// libfaketime returns the path of libfaketime.so.1.
func libfaketime() (string, error) {
	for _, p := range libfaketimePatterns {
		m, _ := filepath.Glob(p)
		if len(m) > 0 {
			return m[0], nil
		}
	}
	return "", errNoLibfaketime
}

// fakeTimeFormat is libfaketime's absolute time format; the relying
// parties run with TZ=UTC so that it is read as UTC.
const fakeTimeFormat = "2006-01-02 15:04:05"

// withFakeTime prefixes argv with "env LD_PRELOAD=libfaketime
// FAKETIME=..." when start is not zero or speed is above 1: the clock
// starts at start (zero: now) and runs speed times faster than real time.
//
// This is what the faketime(1) wrapper does, minus its fork: the wrapper
// runs the program as its child and waits, so the relying party would be
// a grandchild that neither a signal to the wrapper nor Pdeathsig reach.
// env execs, so the relying party keeps the pid the harness started. The
// preload goes innermost, directly before the relying party, which
// inherits it into its forked children; both relying parties are
// dynamically linked.
func withFakeTime(start time.Time, speed int, argv []string) ([]string, error) {
	if start.IsZero() && speed <= 1 {
		return argv, nil
	}
	lib, err := libfaketime()
	if err != nil {
		return nil, err
	}
	spec := "+0"
	if !start.IsZero() {
		spec = "@" + start.UTC().Format(fakeTimeFormat)
	}
	if speed > 1 {
		spec += fmt.Sprintf(" x%d", speed)
	}
	return append([]string{"env", "LD_PRELOAD=" + lib, "FAKETIME=" + spec}, argv...), nil
}
