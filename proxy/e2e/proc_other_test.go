//go:build !linux

package e2e_test

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
