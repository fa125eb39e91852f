package follow

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// benchObjects returns n objects of about 2 KiB, ten per publication
// point like a big RIR repository's member CAs, seeded.
func benchObjects(n int) map[string]object {
	r := rand.New(rand.NewPCG(14, 14))
	objs := make(map[string]object, n)
	for i := range n {
		c := make([]byte, 1800+r.IntN(600))
		for j := range c {
			c[j] = byte(r.Uint32())
		}
		objs[fmt.Sprintf("rsync://rpki.example.net/repo/%d/%d/obj-%d.roa", i/10000, i/10, i)] = object{hash: sha256.Sum256(c), content: c}
	}
	return objs
}

// BenchmarkSerial measures the snapshot files of one serial that changes
// k objects (replaced contents) of a repository of RRDP_BENCH_OBJECTS
// objects (20,000): whole (regenerate and gzip, what every serial cost
// before fragments) and composite (the chunks that changed, then one hash
// pass), in the same run. For the repository of `gen --profile large`:
//
//	RRDP_BENCH_OBJECTS=390105 go test ./proxy/follow -run X -bench Serial -benchtime 3x
func BenchmarkSerial(b *testing.B) {
	n := 20000
	if s := os.Getenv("RRDP_BENCH_OBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	objs := benchObjects(n)
	order := sortedURIs(objs)
	get := func(u string) object { return objs[u] }
	size := xmlSize(objs, nil)
	const xs = "9df4b597-af9e-4dca-bdda-719cce2c4e28"
	r := rand.New(rand.NewPCG(3, 3))
	change := func(k int) {
		for range k {
			u := order[r.IntN(len(order))]
			o := objs[u]
			c := append([]byte(nil), o.content...)
			c[r.IntN(len(c))]++
			objs[u] = object{hash: sha256.Sum256(c), content: c}
		}
	}
	f := &Follower{cfg: Config{GzipLevel: gzip.BestSpeed, Limits: rrdpxml.Limits{MaxObjects: n + 1}}}
	b.Run("whole", func(b *testing.B) {
		serial := uint64(1)
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			change(1)
			serial++
			if _, _, err := f.snapshotFiles(context.Background(), order, get, size, xs, xs, serial, nil, false, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(size)/1e6, "MB-xml")
	})
	for _, k := range []int{1, 100, 10000} {
		if k > n {
			continue
		}
		b.Run(fmt.Sprintf("composite/%d", k), func(b *testing.B) {
			_, prev, err := composite(order, get, xs, xs, 1, nil, gzip.BestSpeed, true, nil, segStore{})
			if err != nil {
				b.Fatal(err)
			}
			serial := uint64(1)
			b.ReportAllocs()
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				change(k)
				serial++
				b.StartTimer()
				t0 := processCPU()
				_, next, err := composite(order, get, xs, xs, serial, prev, gzip.BestSpeed, false, nil, segStore{})
				cpu += processCPU() - t0
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(next.built), "chunks-built")
				prev = next
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// reportCPU starts counting the process's CPU time; the function it
// returns reports it per iteration.
func reportCPU(b *testing.B) func() {
	t0 := processCPU()
	return func() { b.ReportMetric(float64((processCPU()-t0).Milliseconds())/float64(b.N), "cpu-ms/op") }
}
