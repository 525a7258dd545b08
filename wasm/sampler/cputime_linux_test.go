package sampler

import (
	"runtime"
	"syscall"
	"testing"
)

// threadCPU returns the calling thread's user+system CPU time in ns. On a
// shared machine wall-clock benchmarks include time stolen by other
// processes; thread CPU time does not.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportCPU runs f b.N times on a locked thread and reports cpu-ns/op.
func reportCPU(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	for range b.N {
		f()
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkCPUSampleTopP(b *testing.B) {
	x := randLogits(NewRand(9), 129280, 12)
	s, _ := New(Params{Temperature: 1, TopP: 0.95, Seed: 1})
	b.ResetTimer()
	reportCPU(b, func() {
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkCPUReadLogits(b *testing.B) {
	x := randLogits(NewRand(9), 129280, 12)
	b.ResetTimer()
	reportCPU(b, func() {
		s := float32(0)
		for _, v := range x {
			s += v
		}
		benchSink = s
	})
}

func BenchmarkCPUSampleTopPPeaked(b *testing.B) {
	x := PeakedLogits(129280, 5)
	s, _ := New(Params{Temperature: 0.8, TopP: 0.95, Seed: 1})
	b.ResetTimer()
	reportCPU(b, func() {
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkCPUSampleTemperature is a plain draw (temperature only: the
// OpenAI default top_p = 1): quantAll, then the cumulative pick.
func BenchmarkCPUSampleTemperature(b *testing.B) {
	x := randLogits(NewRand(9), 129280, 12)
	s, _ := New(Params{Temperature: 1, TopP: 1, Seed: 1})
	b.ResetTimer()
	reportCPU(b, func() {
		s.count = 0
		if _, err := s.Sample(x, nil); err != nil {
			b.Fatal(err)
		}
	})
}
