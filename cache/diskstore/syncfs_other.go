//go:build !linux

package diskstore

// canSyncfs: without syncfs, every blob is synced as it is written.
const canSyncfs = false

func syncfs(string) error { return nil }
