package repotest

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// orderedMap runs fn(i) for i in [0, n) on workers goroutines and hands
// the results to emit in the order of i, on the calling goroutine. At most
// window results wait for emit, which bounds memory. The first error stops
// the work and is returned.
func orderedMap[T any](n, workers int, fn func(i int) (T, error), emit func(i int, v T) error) error {
	type result struct {
		v   T
		err error
	}
	window := 4 * workers
	slots := make([]chan result, window)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	tokens := make(chan struct{}, window)
	jobs := make(chan int)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				v, err := fn(i)
				slots[i%window] <- result{v, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range n {
			select {
			case tokens <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	var err error
	for i := range n {
		r := <-slots[i%window]
		<-tokens
		if r.err != nil {
			err = r.err
			break
		}
		if err = emit(i, r.v); err != nil {
			break
		}
	}
	// A slot holds at most one result (an index needs the token of the
	// one window places before it), so the workers never block on it and
	// finish their current item; the dispatcher sees stop.
	close(stop)
	wg.Wait()
	return err
}

// parallelFor runs fn(i) for i in [0, n) on up to workers goroutines and
// returns the first error.
func parallelFor(n, workers int, fn func(i int) error) error {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// progress prints how far a long phase is, at most every ten seconds.
type progress struct {
	w     io.Writer
	what  string
	total int
	start time.Time
	done  atomic.Int64
	mu    sync.Mutex
	last  time.Time
}

func newProgress(w io.Writer, what string, total int) *progress {
	now := time.Now()
	return &progress{w: w, what: what, total: total, start: now, last: now}
}

func (p *progress) add(n int) {
	if p == nil || p.w == nil {
		return
	}
	d := p.done.Add(int64(n))
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last) < 10*time.Second {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "repotest: %s %d/%d (%.0f%%, %s)\n", p.what, d, p.total, 100*float64(d)/float64(max(p.total, 1)), now.Sub(p.start).Round(time.Second))
}

func (p *progress) finish() {
	if p == nil || p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "repotest: %s %d done in %s\n", p.what, p.done.Load(), time.Since(p.start).Round(time.Millisecond))
}
