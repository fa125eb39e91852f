package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/irpki/rrdp-proxy/conf"
)

// cgroupTree writes files (path relative to root: content) under a new
// directory and returns it.
func cgroupTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupMemory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2", map[string]string{
			"proc/self/cgroup": "0::/system.slice/rrdp-proxy.service\n",
			"sys/fs/cgroup/system.slice/rrdp-proxy.service/memory.max": "4294967296\n",
			"sys/fs/cgroup/system.slice/memory.max":                    "max\n",
		}, 4 << 30},
		{"v2 ancestor tighter", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":    "2147483648\n",
			"sys/fs/cgroup/kubepods/memory.max":         "8589934592\n",
		}, 2 << 30},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup":                    "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
		}, 0},
		{"v2 path not mounted: the namespace's root", map[string]string{
			"proc/self/cgroup":         "0::/docker/abc\n",
			"sys/fs/cgroup/memory.max": "1073741824\n",
		}, 1 << 30},
		{"v1", map[string]string{
			"proc/self/cgroup": "12:pids:/x\n5:cpu,cpuacct:/x\n4:memory:/docker/abc\n0::/x\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "536870912\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
		}, 512 << 20},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0},
		{"hybrid: v1 without a limit, the unified tree has one", map[string]string{
			"proc/self/cgroup": "4:memory:/a\n0::/a\n",
			"sys/fs/cgroup/memory/a/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/unified/a/memory.max":           "3221225472\n",
		}, 3 << 30},
		{"malformed", map[string]string{
			"proc/self/cgroup":           "0::/a\n",
			"sys/fs/cgroup/a/memory.max": "lots\n",
		}, 0},
		{"no cgroup file", map[string]string{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroupMemory(cgroupTree(t, tc.files)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestChooseMemoryLimit(t *testing.T) {
	limited := cgroupTree(t, map[string]string{
		"proc/self/cgroup":             "0::/svc\n",
		"sys/fs/cgroup/svc/memory.max": "10000000000\n",
	})
	none := cgroupTree(t, map[string]string{"proc/self/cgroup": "0::/\n"})
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOMEMLIMIT" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name, setting, env, root string
		want                     memoryLimit
	}{
		{"a size wins over the cgroup and the environment", "3GiB", "1GiB", limited, memoryLimit{3 << 30, "config"}},
		{"off", "off", "1GiB", limited, memoryLimit{0, "none"}},
		{"auto in a cgroup", "auto", "", limited, memoryLimit{9000000000, "cgroup"}},
		{"auto keeps GOMEMLIMIT", "auto", "1GiB", limited, memoryLimit{startMemoryLimit, "GOMEMLIMIT"}},
		{"auto, GOMEMLIMIT=off: none, as the environment says", "auto", "off", limited, memoryLimit{0, "none"}},
		{"auto without a cgroup limit", "auto", "", none, memoryLimit{0, "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseMemoryLimit(&conf.Server{MemoryLimit: tc.setting}, env(tc.env), tc.root)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := chooseMemoryLimit(&conf.Server{MemoryLimit: "1MiB"}, env(""), none); err == nil {
		t.Error("1MiB: got no error, want one (below the least accepted)")
	}
}

// TestMemoryLimitApplied: the limit chosen reaches the runtime, and off
// removes it again.
func TestMemoryLimitApplied(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	memoryLimit{Bytes: 5 << 30, Source: "config"}.apply()
	if got := debug.SetMemoryLimit(-1); got != 5<<30 {
		t.Errorf("after a size: got %d, want %d", got, int64(5<<30))
	}
	memoryLimit{Source: "none"}.apply()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after off: got %d, want none (%d)", got, int64(math.MaxInt64))
	}
}
