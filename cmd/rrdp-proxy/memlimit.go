package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/irpki/rrdp-proxy/conf"
)

// autoMemoryShare is the part of a container's memory limit that
// memory_limit = "auto" gives the Go heap: the rest is for what the
// runtime does not count (the binary, thread stacks outside the heap,
// the kernel's page cache charged to the cgroup), so that the collector
// works harder before the kernel's OOM killer acts. 90% is the share
// Prometheus and other Go servers settled on.
const autoMemoryShare = 0.9

// startMemoryLimit is the soft memory limit the runtime took from
// GOMEMLIMIT at start (math.MaxInt64 without), read before any
// configuration changes it, so that a reload back to auto restores it.
var startMemoryLimit = debug.SetMemoryLimit(-1)

// memoryLimit is the soft memory limit in force and where it came from.
type memoryLimit struct {
	Bytes  int64  // 0: none
	Source string // "config", "GOMEMLIMIT", "cgroup", "none"
}

// chooseMemoryLimit decides the process's soft memory limit from
// server.memory_limit. A size or off in the configuration wins; auto keeps
// GOMEMLIMIT when the environment sets it (the runtime applied it at
// start), and otherwise takes autoMemoryShare of the memory limit of the
// process's cgroup under root (v2, else v1), the tightest of its
// ancestors; without one, none.
//
// No limit derived from the served bytes: measured on large
// (docs/bench/state.md, "A soft memory limit"), a limit near the served
// state trades CPU for memory in every collection, a choice for the
// operator who knows the machine, not a default.
func chooseMemoryLimit(s *conf.Server, env func(string) string, root string) (memoryLimit, error) {
	n, auto, err := s.SoftMemoryLimit()
	if err != nil {
		return memoryLimit{}, fmt.Errorf("server.memory_limit: %w", err)
	}
	switch {
	case !auto && n > 0:
		return memoryLimit{Bytes: n, Source: "config"}, nil
	case !auto:
		return memoryLimit{Source: "none"}, nil
	case env("GOMEMLIMIT") == "off":
		return memoryLimit{Source: "none"}, nil // the operator's word: none
	case env("GOMEMLIMIT") != "":
		return memoryLimit{Bytes: startMemoryLimit, Source: "GOMEMLIMIT"}, nil
	}
	if c := cgroupMemory(root); c > 0 {
		return memoryLimit{Bytes: int64(float64(c) * autoMemoryShare), Source: "cgroup"}, nil
	}
	return memoryLimit{Source: "none"}, nil
}

// setMemoryLimit applies server.memory_limit to the process and logs it.
func setMemoryLimit(s *conf.Server, log *slog.Logger) error {
	m, err := chooseMemoryLimit(s, os.Getenv, "/")
	if err != nil {
		return err
	}
	m.apply()
	if m.Bytes > 0 {
		log.Info("soft memory limit", "bytes", m.Bytes, "size", conf.Size(m.Bytes).String(), "from", m.Source)
	} else {
		log.Debug("no soft memory limit", "memory_limit", s.MemoryLimit)
	}
	return nil
}

// apply sets the limit on the runtime.
func (m memoryLimit) apply() {
	if m.Bytes > 0 {
		debug.SetMemoryLimit(m.Bytes)
	} else if m.Source == "none" {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

// cgroupMemory returns the memory limit in bytes of this process's cgroup
// under root ("/" on a real system), 0 when there is none. Unreadable or
// malformed files count as no limit: the setting is a tuning, and a node
// never fails to start for it.
func cgroupMemory(root string) int64 {
	b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0
	}
	var v2, v1 string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case containsWord(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	if v1 != "" {
		if n := tightest(filepath.Join(root, "sys/fs/cgroup/memory"), v1, "memory.limit_in_bytes"); n > 0 {
			return n
		}
	}
	if v2 != "" {
		base := filepath.Join(root, "sys/fs/cgroup")
		if _, err := os.Stat(filepath.Join(base, "unified")); err == nil {
			base = filepath.Join(base, "unified") // a hybrid system's v2 tree
		}
		return tightest(base, v2, "memory.max")
	}
	return 0
}

// tightest returns the lowest limit in file along dir/path and its
// ancestors up to dir, 0 when none sets one. Inside a container the
// cgroup path seen in /proc/self/cgroup may not exist under the
// namespace's mount: then the mount's root file is the container's own.
func tightest(dir, path, file string) int64 {
	var low int64
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		if n := limitFile(filepath.Join(dir, p, file)); n > 0 && (low == 0 || n < low) {
			low = n
		}
		if p == "/" {
			return low
		}
	}
}

// limitFile reads a cgroup limit: "max" or a v1 value near MaxInt64 is no
// limit.
func limitFile(name string) int64 {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= math.MaxInt64/2 {
		return 0 // "max", or v1's "unlimited" (a page-rounded MaxInt64)
	}
	return n
}

func containsWord(list, w string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == w {
			return true
		}
	}
	return false
}
