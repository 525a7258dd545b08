//go:build linux

package bench

import (
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/kernels/internal/openblas"
)

// threadCPU returns the CPU time used by the calling OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestGemmVsOpenBLASCPUTime compares the f32 GEMM with OpenBLAS sgemm, both
// on one thread, in thread CPU time: on shared cores the wall clock mostly
// measures the other tenants. Run with
//
//	KERNELS_CPUTIME=1 go test -tags openblas -run CPUTime -v ./kernels/bench/
func TestGemmVsOpenBLASCPUTime(t *testing.T) {
	if os.Getenv("KERNELS_CPUTIME") != "1" || !openblas.Available {
		t.Skip("needs KERNELS_CPUTIME=1 and -tags openblas")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := openblas.SetThreads(1); err != nil {
		t.Fatal(err)
	}
	r := &runner{rng: rand.New(rand.NewPCG(1, 1))}
	M, K, N := 64, 2048, 1024
	wv := r.randF32(N * K)
	w := f32Matrix(N, K, wv)
	x, y := r.randF32(M*K), make([]float32, M*N)
	be := kernels.NewCPU(1)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"ours", func() { be.MatMul(y, w, x, M) }},
		{"openblas", func() { _ = openblas.Sgemm(M, N, K, x, wv, y) }},
	} {
		best := time.Duration(1 << 62)
		for k := 0; k < 8; k++ {
			s := threadCPU()
			c.f()
			c.f()
			best = min(best, (threadCPU()-s)/2)
		}
		t.Logf("%-9s M=%d K=%d N=%d: %.1f GFLOP/s (thread CPU time)", c.name, M, K, N, 2*float64(M*K*N)/best.Seconds()/1e9)
	}
}
