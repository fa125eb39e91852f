package cache

import "encoding/hex"

func hexSum(sum [32]byte) string { return hex.EncodeToString(sum[:]) }
