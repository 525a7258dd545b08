package kernels

import (
	"sync"
	"sync/atomic"
)

// The worker pool is process-wide and persistent: goroutines are started once
// (growing to the largest thread count any backend asked for) and then wait
// on a channel, so an operation costs a channel hand-off per helper instead of
// a goroutine start. Work is handed out in small contiguous chunks through an
// atomic counter, so a helper that was descheduled (the cores are shared)
// does not hold the whole operation back. Which worker runs a chunk never
// changes what the chunk computes, so results do not depend on threads.

// A job is one parallel operation. Chunks are claimed from next; the
// goroutine that completes the last chunk closes finished. The caller waits
// only for chunks, never for helpers to arrive, so a helper that is busy (or
// a call made from inside another job's chunk) cannot deadlock the caller:
// it simply runs the remaining chunks itself.
type job struct {
	next     atomic.Int64
	done     atomic.Int64
	chunks   int64
	n        int
	grain    int
	f        func(lo, hi int)
	finished chan struct{}
}

func (j *job) run() {
	for {
		lo := int(j.next.Add(int64(j.grain))) - j.grain
		if lo >= j.n {
			return
		}
		j.f(lo, min(lo+j.grain, j.n))
		if j.done.Add(1) == j.chunks {
			close(j.finished)
		}
	}
}

var pool struct {
	mu      sync.Mutex
	workers int
	jobs    chan *job
}

// ensureWorkers makes sure at least n helper goroutines exist.
func ensureWorkers(n int) {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.jobs == nil {
		pool.jobs = make(chan *job, 256)
	}
	for ; pool.workers < n; pool.workers++ {
		go func(jobs <-chan *job) {
			for j := range jobs {
				j.run()
			}
		}(pool.jobs)
	}
}

// parallelFor calls f on disjoint chunks [lo,hi) covering [0,n), using up to
// threads goroutines (the caller's included). Chunk boundaries are multiples
// of grain.
func parallelFor(threads, n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	t := min(threads, chunks)
	if t <= 1 {
		for lo := 0; lo < n; lo += grain {
			f(lo, min(lo+grain, n))
		}
		return
	}
	ensureWorkers(t - 1)
	j := &job{n: n, grain: grain, f: f, chunks: int64(chunks), finished: make(chan struct{})}
	for k := 0; k < t-1; k++ {
		select {
		case pool.jobs <- j:
		default: // queue full: the caller does the work
		}
	}
	j.run()
	<-j.finished
}

// grainFor picks a chunk size (a multiple of align) giving each of threads
// workers about eight chunks, for balance on shared cores.
func grainFor(n, threads, align int) int {
	g := (n + threads*8 - 1) / (threads * 8)
	g = (g + align - 1) / align * align
	return max(g, align)
}
