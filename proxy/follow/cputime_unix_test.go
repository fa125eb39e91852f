//go:build unix

package follow

import (
	"syscall"
	"time"
)

// processCPU is the user and system time of the process so far: on a busy
// machine the figure to compare, where wall time mostly measures waiting.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
