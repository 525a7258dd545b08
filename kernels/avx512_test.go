package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// gemvFP4Row512Ref is gemvFP4Row512 written out in Go, operation by
// operation in the kernel's order: per group, 16 lanes of
// (even weight × even x) then a fused add of (odd weight × odd x), times the
// group's scale fused into accumulator g mod 4; then the fixed reduction
// (accumulators pairwise, 16 → 8 → 4 → 2 → 1 lanes).
func gemvFP4Row512Ref(w []byte, x []float32, sc []byte, groups int) float32 {
	var acc [4][16]float32
	for g := range groups {
		scale := e8m0Bits[sc[g]]
		for l := range 16 {
			b := w[g*16+l]
			t := fp4Table[b&15] * x[g*32+2*l]
			t = fma32(fp4Table[b>>4], x[g*32+2*l+1], t)
			acc[g%4][l] = fma32(t, scale, acc[g%4][l])
		}
	}
	var s [16]float32
	for l := range s {
		s[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l])
	}
	var h8, h4 [8]float32
	for l := range 8 {
		h8[l] = s[l] + s[l+8]
	}
	for l := range 4 {
		h4[l] = h8[l] + h8[l+4]
	}
	return (h4[0] + h4[2]) + (h4[1] + h4[3])
}

// TestGEMVFP4Row512Exact checks the AVX-512 FP4 row kernel bit for bit
// against its Go model for group counts with every remainder modulo 4,
// scale byte 0 included, and the whole path (permutation included) against
// the float64 product. It runs where the CPU has AVX-512: in CI, on the
// emulated CPU of tools/avx512.
func TestGEMVFP4Row512Exact(t *testing.T) {
	if !hasAVX512() {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, groups := range []int{1, 2, 3, 4, 5, 6, 7, 17, 64, 130} {
		K := groups * FP4Group
		w, sc := randFP4Row(rng, groups)
		x := randVec(rng, K)
		xp := make([]float32, K)
		permuteFP4Into512(xp, x)
		got := gemvFP4Row512(unsafe.Pointer(&w[0]), &xp[0], unsafe.Pointer(&sc[0]), groups, &e8m0Bits[0], &fp4Table[0])
		want := gemvFP4Row512Ref(w, x, sc, groups)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("groups=%d: kernel %g (%#x), Go model %g (%#x)", groups, got, math.Float32bits(got), want, math.Float32bits(want))
		}
		m := &Matrix{Format: FP4, Rows: 1, Cols: K, Data: w, Scales: sc}
		want64, mag := exactMatMul(m, x, 1)
		if d := math.Abs(float64(got) - want64[0]); d > 4e-7*float64(K)*mag[0]+1e-30 {
			t.Errorf("groups=%d: %g, float64 product %g", groups, got, want64[0])
		}
	}
}

// TestPermuteFP4512 checks permuteFP4Into512 against its definition, into a
// buffer of stale values as the pooled buffers are.
func TestPermuteFP4512(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, groups := range []int{1, 2, 3, 17} {
		K := groups * FP4Group
		x := randVec(rng, K)
		got := make([]float32, K)
		for i := range got {
			got[i] = float32(math.NaN())
		}
		permuteFP4Into512(got, x)
		for g := range groups {
			for j := range 16 {
				if got[g*32+j] != x[g*32+2*j] || got[g*32+16+j] != x[g*32+2*j+1] {
					t.Fatalf("groups=%d: group %d lane %d: %g %g, want %g %g", groups, g, j, got[g*32+j], got[g*32+16+j], x[g*32+2*j], x[g*32+2*j+1])
				}
			}
		}
	}
}

// TestGemm4x8x512MatchesAVX2 checks that the AVX-512 GEMM kernel gives the
// AVX2 kernels' bits: eight inputs through gemm4x8x512 against the same
// eight through gemm4x1, from the same non-zero accumulators, for k from 0
// to past a tile, rows at an odd float offset.
func TestGemm4x8x512MatchesAVX2(t *testing.T) {
	if !hasAVX512() {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range []int{0, 8, 16, 24, 120, 256, 264} {
		ldw, ldx := k+3, k+5
		w := randVec(rng, 4*ldw+1)[1:]
		x := randVec(rng, 8*ldx)
		acc0 := randVec(rng, 8*32)
		got := append([]float32(nil), acc0...)
		want := append([]float32(nil), acc0...)
		wp := unsafe.Pointer(&w[0])
		gemm4x8x512(wp, ldw, &x[0], ldx, &got[0], k)
		for i := range 8 {
			gemm4x1(wp, ldw, &x[i*ldx], &want[i*32], k)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("k=%d: acc[%d] (input %d, row %d, lane %d) is %g, AVX2 gives %g", k, i, i/32, i%32/8, i%8, got[i], want[i])
			}
		}
	}
}

// TestAVX512MatchesAVX2 checks whole products: with AVX-512 on, every
// product with more than one input gives exactly the AVX2 bits (the GEMM
// kernels agree), and FP4 GEMV, whose AVX-512 kernel sums in another
// order, stays within float32 rounding of the AVX2 result.
func TestAVX512MatchesAVX2(t *testing.T) {
	if !hasAVX512() || !useAVX512 {
		t.Skip("no AVX-512")
	}
	defer func() { useAVX512 = true }()
	rng := rand.New(rand.NewPCG(23, 24))
	for _, tc := range []mmCase{
		{F32, 37, 300, 0}, {BF16, 21, 264, 0}, {FP8, 45, 256, 128}, {FP8, 16, 136, 8}, {FP4, 33, 320, 0}, {FP4, 8, 64, 0},
	} {
		w := randMatrix(rng, tc.f, tc.rows, tc.cols, tc.block)
		for _, n := range []int{1, 8, 9, 19, 50} {
			x := randVec(rng, n*tc.cols)
			run := func(avx512 bool) []float32 {
				useAVX512 = avx512
				dst := make([]float32, n*tc.rows)
				NewCPU(2).MatMul(dst, w, x, n)
				return dst
			}
			a2, a5 := run(false), run(true)
			_, mag := exactMatMul(w, x, n)
			for i := range a2 {
				if n == 1 && tc.f == FP4 {
					if d := math.Abs(float64(a5[i] - a2[i])); d > 8e-7*float64(tc.cols)*mag[i] {
						t.Fatalf("%v %dx%d n=1: row %d: AVX-512 %g, AVX2 %g", tc.f, tc.rows, tc.cols, i, a5[i], a2[i])
					}
					continue
				}
				if math.Float32bits(a2[i]) != math.Float32bits(a5[i]) {
					t.Fatalf("%v %dx%d n=%d: output %d: AVX-512 %g, AVX2 %g", tc.f, tc.rows, tc.cols, n, i, a5[i], a2[i])
				}
			}
		}
	}
}

// TestIndexScoresAVX512MatchesAVX2 checks that the six-key AVX-512 indexer
// kernel gives indexScores3's bits: IndexScores with AVX-512 on and off,
// for head counts that need padding, key counts around multiples of 6 and
// thread counts 1–3 (the AVX2 path's chunks of 3 keys start at odd
// multiples of 3), and a key with a NaN (ReLU turns a NaN dot into 0 in
// both).
func TestIndexScoresAVX512MatchesAVX2(t *testing.T) {
	if !hasAVX512() || !useAVX512 {
		t.Skip("no AVX-512")
	}
	defer func() { useAVX512 = true }()
	rng := rand.New(rand.NewPCG(25, 26))
	for _, tc := range []struct{ heads, d, n int }{
		{4, 8, 6}, {5, 16, 7}, {8, 128, 13}, {64, 128, 61}, {7, 24, 12}, {3, 40, 5}, {4, 16, 100},
	} {
		q := randVec(rng, tc.heads*tc.d)
		w := randVec(rng, tc.heads)
		keys := make([][]float32, tc.n)
		for i := range keys {
			keys[i] = randVec(rng, tc.d)
		}
		keys[tc.n/2][tc.d/3] = float32(math.NaN())
		for threads := 1; threads <= 3; threads++ {
			run := func(avx512 bool) []float32 {
				useAVX512 = avx512
				dst := make([]float32, tc.n)
				NewCPU(threads).IndexScores(dst, q, tc.heads, tc.d, w, keys)
				return dst
			}
			a2, a5 := run(false), run(true)
			for i := range a2 {
				if math.Float32bits(a2[i]) != math.Float32bits(a5[i]) {
					t.Fatalf("heads=%d d=%d n=%d threads=%d: key %d: AVX-512 %g, AVX2 %g", tc.heads, tc.d, tc.n, threads, i, a5[i], a2[i])
				}
			}
		}
	}
}
