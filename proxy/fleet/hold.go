package fleet

import (
	"context"
	"fmt"
)

// Hold is the shared tier's part of cache.Cache.Hold: for a retained file
// the node's state directory dropped to keep to its cap (or never had),
// Redis may still hold every blob, and the file is then served from there
// rather than answered 404 (DESIGN.md: a node looks in the shared tier
// before answering 404). redisstore.Store.Hold checks every chunk and keeps
// the blobs from Redis's GC for its grace. When Redis is down the file is
// not held: 404, as before.
func (t *tier) Hold(ctx context.Context, key [32]byte, sums [][32]byte) (func(), error) {
	if t.down.Load() {
		return nil, fmt.Errorf("fleet: hold %x: %w", key[:8], errDown)
	}
	release, err := t.rs.Hold(ctx, key, sums)
	t.failed(err)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return release, nil
}
