//go:build !linux

package e2e_test

import (
	"os"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

func maxRSS(*os.ProcessState) int64 { return 0 }
