package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// fma32 is a float32 fused multiply-add (one rounding), computed exactly.
func fma32(a, b, c float32) float32 {
	var p, s big.Float
	p.SetPrec(256).SetFloat64(float64(a)).Mul(&p, new(big.Float).SetPrec(256).SetFloat64(float64(b)))
	s.SetPrec(256).Add(&p, new(big.Float).SetPrec(256).SetFloat64(float64(c)))
	f, _ := s.Float32()
	return f
}

// gemvFP4RowRef is gemvFP4Row written out in Go, operation by operation in
// the kernel's order (the permuted x, the eight products per lane in four
// chains, the scale applied per pair of groups, the fixed horizontal sum), so
// the kernel can be checked bit for bit. It returns the row's value before
// the 2^-25 unbias.
func gemvFP4RowRef(w []byte, xp []float32, sc []byte, groups int) float32 {
	var acc [8]float32
	for p := 0; p < (groups+1)/2; p++ {
		var t [4]float32
		for l := 0; l < 8; l++ {
			g, d := 2*p+l/4, l%4
			wv := func(m, h int) float32 {
				if g >= groups {
					return 0
				}
				b := w[g*16+4*m+d]
				return fp4Table[(b>>(4*h))&15] * (1 << 25)
			}
			xv := func(v int) float32 { return xp[p*64+v*8+l] }
			for c := 0; c < 4; c++ { // chain c: vectors c (m=c/2, h=c%2) and c+4
				t[c] = wv(c/2, c%2) * xv(c)
				t[c] = fma32(wv(c/2+2, c%2), xv(c+4), t[c])
			}
			s := (t[0] + t[1]) + (t[2] + t[3])
			var scale float32
			if g < groups {
				scale = e8m0Bits[sc[g]]
			}
			acc[l] = fma32(s, scale, acc[l])
		}
	}
	return hsum8(acc[:])
}

// randFP4Row returns one FP4 row of the given number of groups, its bytes at
// an odd address, and its scale bytes (about one in seven is 0, which the
// kernels take as a zero scale).
func randFP4Row(rng *rand.Rand, groups int) (w, sc []byte) {
	w = make([]byte, groups*FP4Group/2+1)[1:]
	for i := range w {
		w[i] = uint8(rng.IntN(256))
	}
	sc = make([]byte, groups)
	for i := range sc {
		sc[i] = uint8(110 + rng.IntN(30))
		if rng.IntN(7) == 0 {
			sc[i] = 0
		}
	}
	return w, sc
}

// TestGEMVFP4RowExact checks the FP4 row kernel bit for bit against its Go
// model on odd group counts (a lone last group), scale byte 0 included, and
// the full path (permutation, unbias) against the float64 product.
func TestGEMVFP4RowExact(t *testing.T) {
	if !hasAVX2() {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(7, 9))
	for _, groups := range []int{1, 2, 3, 5, 17, 64, 129} {
		K := groups * FP4Group
		w, sc := randFP4Row(rng, groups)
		x := randVec(rng, K)
		xp := make([]float32, fp4PermutedLen(K))
		permuteFP4Into(xp, x)
		got := gemvFP4Row(unsafe.Pointer(&w[0]), &xp[0], unsafe.Pointer(&sc[0]), groups, &e8m0Bits[0])
		want := gemvFP4RowRef(w, xp, sc, groups)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("groups=%d: kernel %g (%#x), Go model %g (%#x)", groups, got, math.Float32bits(got), want, math.Float32bits(want))
		}
		m := &Matrix{Format: FP4, Rows: 1, Cols: K, Data: w, Scales: sc}
		want64, mag := exactMatMul(m, x, 1)
		v := float64(got * fp4Unbias)
		if d := math.Abs(v - want64[0]); d > 4e-7*float64(K)*mag[0]+1e-30 {
			t.Errorf("groups=%d: %g, float64 product %g", groups, v, want64[0])
		}
	}
}

// TestE8M0Bits pins the scale table to E8M0ToF32 where both are defined the
// same way (every byte but 0, which the kernel takes as 0, and 255).
func TestE8M0Bits(t *testing.T) {
	for b := 1; b < 255; b++ {
		if e8m0Bits[b] != E8M0ToF32(uint8(b)) {
			t.Fatalf("byte %d: %g != %g", b, e8m0Bits[b], E8M0ToF32(uint8(b)))
		}
	}
	if e8m0Bits[0] != 0 {
		t.Fatal(fmt.Sprint("byte 0: ", e8m0Bits[0]))
	}
}

// TestPermuteFP4 checks the table-driven permutation against its
// definition (vector 2m+h of a pair holds inputs 8m+2d+h of the first group
// in lanes d and of the second group in lanes 4+d; a lone last group is
// paired with zeros), writing into a reused buffer full of stale values as
// the pooled buffers are.
func TestPermuteFP4(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, groups := range []int{1, 2, 3, 4, 5, 17, 64, 129} {
		K := groups * FP4Group
		x := randVec(rng, K)
		want := make([]float32, fp4PermutedLen(K))
		for p := 0; p*64 < K; p++ {
			for m := 0; m < 4; m++ {
				for h := 0; h < 2; h++ {
					for d := 0; d < 4; d++ {
						v := p*64 + (2*m+h)*8
						if i := p*64 + 8*m + 2*d + h; i < K {
							want[v+d] = x[i]
						}
						if i := p*64 + 32 + 8*m + 2*d + h; i < K {
							want[v+4+d] = x[i]
						}
					}
				}
			}
		}
		got := make([]float32, len(want))
		for i := range got {
			got[i] = float32(math.NaN())
		}
		permuteFP4Into(got, x)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("groups=%d: position %d is %g, want %g", groups, i, got[i], want[i])
			}
		}
	}
}
