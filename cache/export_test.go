package cache

import "encoding/hex"

func HexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }

// Waiters returns how many callers wait for the fill of sum, or -1.
func (c *Cache) Waiters(sum [32]byte) int {
	c.fills.mu.Lock()
	defer c.fills.mu.Unlock()
	if f := c.fills.m[sum]; f != nil {
		return f.waiters
	}
	return -1
}
