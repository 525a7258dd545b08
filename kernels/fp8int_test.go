package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestFP8IntWideningExact checks that the integer-widening FP8 kernel gives
// the same bits as the half-precision one for every byte code (NaN codes
// included: both read them as ±480), on column counts with a tail of 8.
func TestFP8IntWideningExact(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, K := range []int{8, 24, 136, 1032} {
		w := make([]byte, 8*K+1)[1:] // odd address
		for i := range w {
			w[i] = uint8(rng.IntN(256))
		}
		for i := 0; i < 256 && i < len(w); i++ {
			w[i] = uint8(i)
		}
		x := randVec(rng, K)
		x8, x120 := make([]float32, K), make([]float32, K)
		for i, v := range x {
			x8[i], x120[i] = v*256, v*0x1p120
		}
		a, b := make([]float32, 64), make([]float32, 64)
		gemvFP8x8(unsafe.Pointer(&w[0]), K, &x8[0], &a[0], K)
		gemvFP8x8i(unsafe.Pointer(&w[0]), K, &x120[0], &b[0], K)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("K=%d lane %d: half widening %g, integer widening %g", K, i, a[i], b[i])
			}
		}
	}
}

// TestFP8GEMVPathChoice covers the block rows that must fall back to the
// half-precision kernel (|x·s| ≥ 2^7, tiny scales, NaN in x) next to ones that
// take the integer kernel: n=1 must still give the GEMM's bits and match the
// float64 product.
func TestFP8GEMVPathChoice(t *testing.T) {
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(8, 3))
		for _, scale := range []uint8{127, 140, 20, 26, 27} {
			for _, xmag := range []float32{1, 300} {
				w := randMatrix(rng, FP8, 24, 264, 8)
				for i := 0; i < len(w.Scales)/2; i++ {
					w.Scales[i] = scale // first block rows at the tested scale
				}
				x := randVec(rng, 5*w.Cols)
				for i := range x {
					x[i] *= xmag
				}
				name := fmt.Sprintf("scale=%d xmag=%g", scale, xmag)
				one := make([]float32, w.Rows)
				NewCPU(2).MatMul(one, w, x[:w.Cols], 1)
				many := make([]float32, 5*w.Rows)
				NewCPU(2).MatMul(many, w, x, 5)
				want, mag := exactMatMul(w, x[:w.Cols], 1)
				for r := range one {
					if useSIMD && math.Float32bits(one[r]) != math.Float32bits(many[r]) {
						t.Fatalf("%s row %d: n=1 gives %g, n=5 gives %g", name, r, one[r], many[r])
					}
					if d := math.Abs(float64(one[r]) - want[r]); d > 4e-7*float64(w.Cols)*mag[r]+1e-30 {
						t.Fatalf("%s row %d: %g, float64 product %g", name, r, one[r], want[r])
					}
				}
			}
		}
		// A NaN in x makes every product of its column NaN on either path.
		w := randMatrix(rng, FP8, 8, 16, 8)
		x := randVec(rng, 16)
		x[3] = float32(math.NaN())
		dst := make([]float32, 8)
		NewCPU(1).MatMul(dst, w, x, 1)
		for r, v := range dst {
			if !math.IsNaN(float64(v)) && w.Data[r*16+3]&0x7F != 0 {
				t.Fatalf("row %d: %g, want NaN", r, v)
			}
		}
	})
}

// TestBlockAbsMax checks the per-block maxima of |x| (which choose between
// the integer and the half-precision FP8 kernels) against their definition
// on block and vector lengths that are and are not multiples of 8, with
// negative values, zeros, subnormals, infinities and NaNs.
func TestBlockAbsMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -3e38}
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 128, 129, 300, 4096} {
		for _, b := range []int{6, 7, 8, 32, 128} {
			for trial := 0; trial < 4; trial++ {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-4)))
					if trial > 0 && rng.IntN(40) == 0 {
						x[i] = special[rng.IntN(len(special))]
					}
				}
				got := blockAbsMax(x, b)
				if len(got) != (n+b-1)/b {
					t.Fatalf("n=%d b=%d: %d blocks", n, b, len(got))
				}
				for k := range got {
					want := uint32(0)
					for _, v := range x[k*b : min((k+1)*b, n)] {
						want = max(want, math.Float32bits(v)&0x7fffffff)
					}
					if math.Float32bits(got[k]) != want {
						t.Fatalf("n=%d b=%d block %d: %#x, want %#x", n, b, k, math.Float32bits(got[k]), want)
					}
				}
			}
		}
	}
}
