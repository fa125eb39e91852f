package redisstore

import (
	"testing"

	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// newStore returns a Store on srv, closed when the test ends.
func newStore(t testing.TB, srv *redistest.Server, cfg Config) *Store {
	t.Helper()
	cfg.URL = srv.URL()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}
