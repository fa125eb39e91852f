package status

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// mirrorReport is a node mirroring n repositories, like an IXP's.
func mirrorReport(n int) *Report {
	r := fixture()
	base := r.Repos[0]
	r.Repos = r.Repos[:0]
	for i := range n {
		rp := base
		rp.Name = fmt.Sprintf("repo-%03d", i)
		rp.Origin = fmt.Sprintf("https://rrdp-%03d.example/notification.xml", i)
		rp.StateTime = r.Now.Add(-time.Duration(i) * time.Second)
		rp.Errors = map[string]uint64{"fetch": uint64(i)}
		if i%7 == 0 {
			rp.LastError = r.Now.Add(-time.Second)
			rp.LastErr = "fetch: connection refused"
		}
		r.Repos = append(r.Repos, rp)
	}
	return r
}

func BenchmarkWriteHTML(b *testing.B) {
	r := mirrorReport(90)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteHTML(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJSON(b *testing.B) {
	r := mirrorReport(90)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteJSON(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
