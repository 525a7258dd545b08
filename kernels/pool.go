package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool is process-wide and persistent: goroutines are started once
// (growing to the largest thread count any backend asked for) and then wait
// for jobs, so an operation costs a hand-off per helper instead of a
// goroutine start. Work is handed out in small contiguous chunks through an
// atomic counter, so a helper that was descheduled (the cores are shared)
// does not hold the whole operation back. Which worker runs a chunk never
// changes what the chunk computes, so results do not depend on threads.
//
// Waking a parked goroutine costs a futex wake and, on an idle core, an
// inter-processor interrupt: 50–80 µs on the virtual machines we measure on,
// as long as a whole FP8 GEMV of 4096→512. A decode step makes about 40
// parallel operations separated by short serial stretches, so helpers and
// the caller spin for up to spinFor before they park: a helper polls for the
// next posted job, the caller for the last chunk of its own. Parked helpers
// are woken through the channel as before.

// spinFor is how long a helper looks for new work, and the caller for its
// job's completion, before blocking.
const spinFor = 200 * time.Microsecond

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

// claimable reports whether chunks of j are left to claim.
func (j *job) claimable() bool { return j.next.Load() < int64(j.n) }

var pool struct {
	mu      sync.Mutex
	workers int
	jobs    chan *job
	posted  atomic.Pointer[job] // the latest job, for spinning helpers
	parked  atomic.Int32        // helpers blocked on jobs
}

// ensureWorkers makes sure at least n helper goroutines exist.
func ensureWorkers(n int) {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.jobs == nil {
		pool.jobs = make(chan *job, 256)
	}
	for ; pool.workers < n; pool.workers++ {
		go helper(pool.jobs)
	}
}

// helper runs jobs: the posted one while it spins, else what the channel
// brings once it has parked. A job taken both ways is harmless: run returns
// at once when no chunk is left.
func helper(jobs <-chan *job) {
	for {
		if j := spinForJob(); j != nil {
			j.run()
			continue
		}
		pool.parked.Add(1)
		// A job posted between the spin and the increment would find no
		// parked helper to send to: look once more.
		if j := pool.posted.Load(); j != nil && j.claimable() {
			pool.parked.Add(-1)
			j.run()
			continue
		}
		j := <-jobs
		pool.parked.Add(-1)
		j.run()
	}
}

// spinForJob polls for a posted job with chunks left, for up to spinFor.
func spinForJob() *job {
	start := time.Now()
	for i := 1; ; i++ {
		if j := pool.posted.Load(); j != nil && j.claimable() {
			return j
		}
		if i%64 == 0 {
			if time.Since(start) > spinFor {
				return nil
			}
			runtime.Gosched() // let other goroutines of this P run
		}
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
	pool.posted.Store(j)
	for k := min(int(pool.parked.Load()), t-1); k > 0; k-- {
		select {
		case pool.jobs <- j:
		default: // queue full: the caller does the work
		}
	}
	j.run()
	// Spin for the helpers' last chunks before parking on finished.
	start := time.Now()
	for i := 1; j.done.Load() < j.chunks; i++ {
		if i%64 == 0 && time.Since(start) > spinFor {
			<-j.finished
			break
		}
	}
}

// grainFor picks a chunk size (a multiple of align) giving each of threads
// workers about eight chunks, for balance on shared cores.
func grainFor(n, threads, align int) int {
	g := (n + threads*8 - 1) / (threads * 8)
	g = (g + align - 1) / align * align
	return max(g, align)
}
