package redisstore

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/cache/redisstore/redistest"
)

// TestMissingPartList: a head naming a composite file whose part list
// Redis lost (restarted empty, evicted) lists the part list as missing,
// not an error, so that a holder puts it back; once it is back, its
// parts show; PutHead refuses the head until everything is there.
func TestMissingPartList(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, redistest.Start(t), Config{})
	part := []byte("a segment of a snapshot")
	psum := sha256.Sum256(part)
	list := cache.EncodeParts([]cache.Part{{Data: []byte("<snapshot>")}, {Sum: psum, Size: int64(len(part))}})
	lsum := sha256.Sum256(list)
	h := &cache.Head{Repo: "r", Serial: 2, Time: time.Now(), Files: []cache.File{{
		Path: "old/snapshot.xml", Sum: [32]byte{1}, Size: int64(10 + len(part)), Index: lsum,
		Expires: time.Now().Add(time.Hour)}}}

	missing, err := s.Missing(ctx, h)
	if err != nil || len(missing) != 1 || missing[0] != lsum {
		t.Fatalf("Missing with the part list lost: %x, %v; want the list %x alone", missing, err, lsum[:8])
	}
	if err := s.PutHead(ctx, "r", h); err == nil {
		t.Fatal("PutHead of a head whose part list is missing: no error")
	}
	if err := s.PutBlob(ctx, lsum, list); err != nil {
		t.Fatal(err)
	}
	missing, err = s.Missing(ctx, h)
	if err != nil || len(missing) != 1 || missing[0] != psum {
		t.Fatalf("Missing with the list back: %x, %v; want its part %x", missing, err, psum[:8])
	}
	if err := s.PutBlob(ctx, psum, part); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHead(ctx, "r", h); err != nil {
		t.Fatalf("PutHead with every blob: %v", err)
	}
}
