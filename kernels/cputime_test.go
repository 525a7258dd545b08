//go:build linux

package kernels

import (
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time the calling OS thread has used; timing by it
// instead of the wall clock makes kernel comparisons usable on shared cores.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestKernelCPUTime prints single-thread in-cache throughput measured in
// thread CPU time. Run with KERNELS_CPUTIME=1 go test -run KernelCPUTime -v.
func TestKernelCPUTime(t *testing.T) {
	if os.Getenv("KERNELS_CPUTIME") != "1" {
		t.Skip("set KERNELS_CPUTIME=1")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		name              string
		f                 Format
		rows, cols, block int
		n                 int
	}{
		{"f32", F32, 128, 1024, 0, 1}, {"bf16", BF16, 256, 1024, 0, 1},
		{"fp8b128", FP8, 512, 1024, 128, 1}, {"fp8b32", FP8, 512, 1024, 32, 1},
		{"fp4", FP4, 1024, 1024, 0, 1},
		{"gemm-f32", F32, 256, 1024, 0, 64}, {"gemm-fp8", FP8, 256, 1024, 128, 64}, {"gemm-fp4", FP4, 256, 1024, 0, 64},
	} {
		w := randMatrix(rng, c.f, c.rows, c.cols, c.block)
		x := randVec(rng, c.n*c.cols)
		dst := make([]float32, c.n*c.rows)
		best := time.Duration(1 << 62)
		for rep := 0; rep < 5; rep++ {
			iters := 0
			start := threadCPU()
			for threadCPU()-start < 20*time.Millisecond {
				for k := 0; k < 10; k++ {
					matMul(nil, dst, w, x, c.n)
				}
				iters += 10
			}
			best = min(best, (threadCPU()-start)/time.Duration(iters))
		}
		gflops := 2 * float64(c.rows*c.cols*c.n) / best.Seconds() / 1e9
		t.Logf("%-10s %8.2f GB/s weights  %7.2f GFLOP/s  (%v/op)", c.name, float64(w.Bytes())/best.Seconds()/1e9, gflops, best)
	}
}

// TestAttendCPUTime compares Attend with AttendRef in thread CPU time
// (KERNELS_CPUTIME=1).
func TestAttendCPUTime(t *testing.T) {
	if os.Getenv("KERNELS_CPUTIME") != "1" {
		t.Skip("set KERNELS_CPUTIME=1")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewPCG(1, 1))
	heads, d, S := 16, 512, 256
	q, sinks := randVec(rng, heads*d), randVec(rng, heads)
	rows := make([][]float32, S)
	for i := range rows {
		rows[i] = randVec(rng, d)
	}
	out := make([]float32, heads*d)
	be := NewCPU(1)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"attend", func() { be.Attend(out, q, heads, d, rows, sinks, 0.04) }},
		{"ref", func() { AttendRef(out, q, heads, d, rows, sinks, 0.04) }},
	} {
		best := time.Duration(1 << 62)
		for rep := 0; rep < 5; rep++ {
			iters := 0
			start := threadCPU()
			for threadCPU()-start < 20*time.Millisecond {
				c.f()
				iters++
			}
			best = min(best, (threadCPU()-start)/time.Duration(iters))
		}
		t.Logf("%-8s %v/op  %.2f GFLOP/s", c.name, best, 4*float64(heads*d*S)/best.Seconds()/1e9)
	}
}

// TestIndexScoresCPUTime times the indexer scoring kernel on one thread
// (64 heads × 128 dims, 3000 keys, as at 12K context) in thread CPU time,
// against the old formulation, a Dot per key and head (KERNELS_CPUTIME=1).
func TestIndexScoresCPUTime(t *testing.T) {
	if os.Getenv("KERNELS_CPUTIME") != "1" {
		t.Skip("set KERNELS_CPUTIME=1")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rng := rand.New(rand.NewPCG(1, 1))
	heads, d, S := 64, 128, 3000
	q, w := randVec(rng, heads*d), randVec(rng, heads)
	keys := make([][]float32, S)
	for i := range keys {
		keys[i] = randVec(rng, d)
	}
	dst := make([]float32, S)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"kernel", func() { IndexScores(nil, dst, q, heads, d, w, keys) }},
		{"dot-loop", func() {
			for k, key := range keys {
				var s float32
				for h := 0; h < heads; h++ {
					if v := Dot(q[h*d:(h+1)*d], key); v > 0 {
						s += v * w[h]
					}
				}
				dst[k] = s
			}
		}},
	} {
		best := time.Duration(1 << 62)
		for rep := 0; rep < 5; rep++ {
			iters := 0
			start := threadCPU()
			for threadCPU()-start < 40*time.Millisecond {
				c.f()
				iters++
			}
			best = min(best, (threadCPU()-start)/time.Duration(iters))
		}
		t.Logf("%-8s %v/op  %.2f GFLOP/s", c.name, best, 2*float64(heads*d*S)/best.Seconds()/1e9)
	}
}
