package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Each CPU backend owns a Pool: helper goroutines started once, which then
// wait for jobs, so an operation costs a hand-off per helper instead of a
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
// are woken through the channel.

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

// Pool runs parallel operations on threads goroutines: the caller of For
// and threads−1 helpers. It is safe for concurrent use. Its helpers stop
// when Close is called or, failing that, once the Pool is garbage.
type Pool struct {
	threads int
	q       *queue
}

// queue is what the helpers share; it does not point back to the Pool, so
// an abandoned Pool can be collected and its helpers told to stop.
type queue struct {
	jobs      chan *job
	posted    atomic.Pointer[job] // the latest job, for spinning helpers
	parked    atomic.Int32        // helpers blocked on jobs
	closeOnce sync.Once
}

func (q *queue) close() { q.closeOnce.Do(func() { close(q.jobs) }) }

// NewPool returns a pool of threads workers (0 or less: one per core).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	q := &queue{jobs: make(chan *job, 256)}
	for range threads - 1 {
		go q.helper()
	}
	p := &Pool{threads: threads, q: q}
	runtime.AddCleanup(p, func(q *queue) { q.close() }, q)
	return p
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the helpers; the pool must not be used afterwards.
func (p *Pool) Close() { p.q.close() }

// helper runs jobs: the posted one while it spins, else what the channel
// brings once it has parked; it returns when the channel is closed. A job
// taken both ways is harmless: run returns at once when no chunk is left.
func (q *queue) helper() {
	for {
		if j := q.spinForJob(); j != nil {
			j.run()
			continue
		}
		q.parked.Add(1)
		// A job posted between the spin and the increment would find no
		// parked helper to send to: look once more.
		if j := q.posted.Load(); j != nil && j.claimable() {
			q.parked.Add(-1)
			j.run()
			continue
		}
		j, ok := <-q.jobs
		q.parked.Add(-1)
		if !ok {
			return
		}
		j.run()
	}
}

// spinForJob polls for a posted job with chunks left, for up to spinFor.
func (q *queue) spinForJob() *job {
	start := time.Now()
	for i := 1; ; i++ {
		if j := q.posted.Load(); j != nil && j.claimable() {
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

// For calls f on disjoint chunks [lo,hi) covering [0,n), on up to
// Threads goroutines (the caller's included). Chunk boundaries are
// multiples of grain. A nil Pool runs everything on the caller.
func (p *Pool) For(n, grain int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	t := min(p.Threads(), chunks)
	if t <= 1 {
		for lo := 0; lo < n; lo += grain {
			f(lo, min(lo+grain, n))
		}
		return
	}
	q := p.q
	j := &job{n: n, grain: grain, f: f, chunks: int64(chunks), finished: make(chan struct{})}
	q.posted.Store(j)
	for k := min(int(q.parked.Load()), t-1); k > 0; k-- {
		select {
		case q.jobs <- j:
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
	runtime.KeepAlive(p) // the helpers must outlive the operation
}

// grainFor picks a chunk size (a multiple of align) giving each of threads
// workers about eight chunks, for balance on shared cores.
func grainFor(n, threads, align int) int {
	g := (n + threads*8 - 1) / (threads * 8)
	g = (g + align - 1) / align * align
	return max(g, align)
}
