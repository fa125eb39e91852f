package follow

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/irpki/rrdp-proxy/cache"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// BenchmarkRestart measures what a restarted follower does with a stored
// composite snapshot of RRDP_BENCH_OBJECTS objects (20,000; about 2 KiB
// each, as benchObjects) before its first poll: read the objects back and
// resume the fragments. "assembled" is the way before (the .bin read into
// one slice, hashed, every object copied out of it), "views" the parts
// read one after the other with every object a view into its segment
// (readSnapshotViews), in the same run. B/op is what each allocates
// beside the stored segments, which a node's cache holds anyway. For the
// size of `gen --profile large`:
//
//	RRDP_BENCH_OBJECTS=390105 go test ./proxy/follow -run X -bench Restart -benchtime 3x
func BenchmarkRestart(b *testing.B) {
	n := 20000
	if s := os.Getenv("RRDP_BENCH_OBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	const xs = "9df4b597-af9e-4dca-bdda-719cce2c4e28"
	objs := benchObjects(n)
	order := sortedURIs(objs)
	blobs, _, err := composite(order, func(u string) object { return objs[u] }, xs, xs, 1, nil, gzip.BestSpeed, true, nil, segStore{})
	if err != nil {
		b.Fatal(err)
	}
	objs, order = nil, nil
	store := map[[32]byte][]byte{}
	var snap [4]*File
	for i := range blobs {
		for _, s := range blobs[i].parts {
			store[s.sum] = s.b
		}
		snap[i] = &blobs[i].File
	}
	bin := snap[1]
	get := func(_ context.Context, sum [32]byte) ([]byte, error) {
		if b, ok := store[sum]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("blob %x: %w", sum[:8], fs.ErrNotExist)
	}
	ctx := context.Background()
	lim := rrdpxml.Limits{MaxObjects: n + 1}
	resumed := func(b *testing.B, objs map[string]object, order []string, sv *snapshotViews) {
		fr, err := resume(ctx, order, func(u string) object { return objs[u] }, xs, xs, snap, get, false, sv)
		if err != nil {
			b.Fatal(err)
		}
		fr.Realias(func(u string, c []byte) { o := objs[u]; o.content = c; objs[u] = o })
	}
	b.Run("assembled", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			whole, err := cache.ReadFile(ctx, bin, get)
			if err != nil || sha256.Sum256(whole) != bin.Sum {
				b.Fatalf("read %s: %v", bin.Path, err)
			}
			objs, err := readSnapshot(whole, irpki.FormatBin, xs, 1, lim)
			if err != nil {
				b.Fatal(err)
			}
			resumed(b, objs, sortedURIs(objs), nil)
		}
		b.ReportMetric(float64(bin.Size)/1e6, "MB-bin")
	})
	b.Run("views", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			sv, err := readSnapshotViews(ctx, bin, xs, 1, lim, get)
			if err != nil {
				b.Fatal(err)
			}
			resumed(b, sv.objects, sv.order, sv)
		}
		b.ReportMetric(float64(bin.Size)/1e6, "MB-bin")
	})
}
