package kernels

import (
	"math/rand/v2"
	"testing"
)

// In-cache, single-thread throughput of the products: the compute ceiling of
// each kernel, apart from memory. The bench package measures the real
// (streaming, multi-threaded) figures.

func benchMatMul(b *testing.B, f Format, rows, cols, block, n int) {
	rng := rand.New(rand.NewPCG(1, 1))
	w := randMatrix(rng, f, rows, cols, block)
	x := randVec(rng, n*cols)
	dst := make([]float32, n*rows)
	be := NewCPU(1)
	b.SetBytes(int64(w.Bytes()))
	for b.Loop() {
		be.MatMul(dst, w, x, n)
	}
}

func BenchmarkGemvF32(b *testing.B)    { benchMatMul(b, F32, 128, 1024, 0, 1) }
func BenchmarkGemvBF16(b *testing.B)   { benchMatMul(b, BF16, 256, 1024, 0, 1) }
func BenchmarkGemvFP8(b *testing.B)    { benchMatMul(b, FP8, 512, 1024, 128, 1) }
func BenchmarkGemvFP8b32(b *testing.B) { benchMatMul(b, FP8, 512, 1024, 32, 1) }
func BenchmarkGemvFP4(b *testing.B)    { benchMatMul(b, FP4, 1024, 1024, 0, 1) }
func BenchmarkGemmF32(b *testing.B)    { benchMatMul(b, F32, 256, 1024, 0, 64) }
func BenchmarkGemmFP8(b *testing.B)    { benchMatMul(b, FP8, 256, 1024, 128, 64) }
func BenchmarkGemmFP4(b *testing.B)    { benchMatMul(b, FP4, 256, 1024, 0, 64) }

func BenchmarkAttend(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	heads, d, S := 16, 512, 256
	q, sinks := randVec(rng, heads*d), randVec(rng, heads)
	rows := make([][]float32, S)
	for i := range rows {
		rows[i] = randVec(rng, d)
	}
	out := make([]float32, heads*d)
	be := NewCPU(1)
	for b.Loop() {
		be.Attend(out, q, heads, d, rows, sinks, 0.04)
	}
}
