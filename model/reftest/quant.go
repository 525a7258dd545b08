package reftest

import (
	"math"
)

// This file holds the reference's simulated low-precision operators (spec
// attention-and-formats.md §2.3, §2.6), written from their definitions in
// float64. Each operator quantizes and immediately dequantizes its input in
// place, in blocks of contiguous elements; a last block may be shorter.

// e4m3Max is the largest finite float8 e4m3fn value.
const e4m3Max = 448

// e2m1Mags are the non-negative values of the FP4 e2m1 grid, by code.
var e2m1Mags = [8]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6}

// RoundE4M3 rounds v to the nearest float8 e4m3fn value, ties to even
// mantissa. e4m3fn has 3 mantissa bits, exponent bias 7, normals down to
// 2⁻⁶, subnormals in steps of 2⁻⁹, and a largest value of 448; magnitudes
// beyond 448 saturate to ±448 (the reference clamps before every cast).
func RoundE4M3(v float64) float64 {
	if v == 0 || math.IsNaN(v) {
		return v
	}
	a := math.Abs(v)
	_, exp := math.Frexp(a) // a = f·2^exp, f ∈ [0.5, 1)
	e := exp - 1            // a ∈ [2^e, 2^(e+1))
	if e < -6 {
		e = -6 // subnormal range: fixed spacing 2^-9
	}
	step := math.Ldexp(1, e-3)
	q := math.RoundToEven(a/step) * step
	if q > e4m3Max {
		q = e4m3Max
	}
	return math.Copysign(q, v)
}

// RoundE2M1 rounds v to the nearest FP4 e2m1 value (±{0, 0.5, 1, 1.5, 2, 3,
// 4, 6}), ties to the even code: 0.25→0, 0.75→1, 1.25→1, 1.75→2, 2.5→2,
// 3.5→4, 5→4. Magnitudes beyond 6 saturate to ±6.
func RoundE2M1(v float64) float64 {
	a := math.Min(math.Abs(v), 6)
	best, bestD := 0, math.Inf(1)
	for i, m := range e2m1Mags {
		d := math.Abs(a - m)
		if d < bestD || (d == bestD && i%2 == 0) {
			best, bestD = i, d
		}
	}
	return math.Copysign(e2m1Mags[best], v)
}

// pow2CeilF32 is 2^ceil(log2(v)) for a positive normal float32 v, computed
// as the reference does from the bit pattern: the exponent field minus 127,
// plus one when any mantissa bit is set.
func pow2CeilF32(v float32) float64 {
	b := math.Float32bits(v)
	e := int(b>>23&0xFF) - 127
	if b&0x7FFFFF != 0 {
		e++
	}
	return math.Ldexp(1, e)
}

// tieHook, when non-nil, is told about every element that lies within
// nearTieMargin (1e-4) of a step of a rounding boundary of Q8, Q4E8 or Q4E4 (a
// float32 implementation may round such an element the other way). It
// returns true to round that element to the other side of the boundary.
type tieHook func(kind string, elem int, v, margin float64) bool

const nearTieMargin = 1e-4

// e4m3Margin is the distance of a ≥ 0 to the nearest e4m3 rounding boundary,
// in steps.
func e4m3Margin(a float64) float64 {
	if a == 0 {
		return 1
	}
	_, exp := math.Frexp(a)
	step := math.Ldexp(1, max(exp-1, -6)-3)
	f := a/step - math.Floor(a/step)
	return math.Abs(f - 0.5)
}

// e2m1Margin is the distance of a ≥ 0 to the nearest e2m1 rounding boundary
// (midpoints of the grid), in units of the local grid spacing.
func e2m1Margin(a float64) float64 {
	m := 1.0
	for i := 1; i < len(e2m1Mags); i++ {
		lo, hi := e2m1Mags[i-1], e2m1Mags[i]
		m = math.Min(m, math.Abs(a-(lo+hi)/2)/(hi-lo))
	}
	return m
}

// noteTies reports x's near-tie elements (x/s within nearTieMargin of a
// boundary) to onNearTie; it returns, for those onNearTie asks to flip,
// the value to round instead of x_i/s: x_i/s mirrored across the boundary.
func noteTies(hook tieHook, kind string, x []float64, s float64, margin func(float64) float64) map[int]float64 {
	if hook == nil {
		return nil
	}
	var flip map[int]float64
	for i, v := range x {
		a := math.Abs(v / s)
		if m := margin(a); m < nearTieMargin && hook(kind, i, v, m) {
			if flip == nil {
				flip = map[int]float64{}
			}
			// The boundary is within m steps of a: step across it twice.
			lo, hi := a*(1-4*nearTieMargin), a*(1+4*nearTieMargin)
			alt := lo
			if kind == "Q8" && RoundE4M3(lo) == RoundE4M3(a) || kind != "Q8" && RoundE2M1(lo) == RoundE2M1(a) {
				alt = hi
			}
			flip[i] = math.Copysign(alt, v)
		}
	}
	return flip
}

// blockAmax is the largest magnitude of x.
func blockAmax(x []float64) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// blocks calls f on each run of b contiguous elements of x.
func blocks(x []float64, b int, f func([]float64)) {
	for i := 0; i < len(x); i += b {
		f(x[i:min(i+b, len(x))])
	}
}

// Q8 is the FP8 block quant-dequant with a power-of-two (ue8m0) scale:
// per block, amax = max(max|x|, 1e-4), s = 2^ceil(log2(amax/448)),
// x ← e4m3(clamp(x/s, ±448))·s.
func Q8(x []float64, b int) { q8(x, b, nil) }

func q8(x []float64, b int, hook tieHook) {
	blocks(x, b, func(x []float64) {
		amax := math.Max(blockAmax(x), 1e-4)
		s := pow2CeilF32(float32(amax) / e4m3Max)
		flip := noteTies(hook, "Q8", x, s, e4m3Margin)
		for i, v := range x {
			v /= s
			if f, ok := flip[i]; ok {
				v = f
			}
			x[i] = RoundE4M3(math.Max(-e4m3Max, math.Min(e4m3Max, v))) * s
		}
	})
}

// Q4E8 is the FP4 e2m1 block quant-dequant with a power-of-two scale:
// per block, amax = max(max|x|, 6·2⁻¹²⁶), s = 2^ceil(log2(amax/6)),
// x ← e2m1(clamp(x/s, ±6))·s.
func Q4E8(x []float64, b int) { q4e8(x, b, nil) }

func q4e8(x []float64, b int, hook tieHook) {
	blocks(x, b, func(x []float64) {
		amax := math.Max(blockAmax(x), 6*math.Ldexp(1, -126))
		s := pow2CeilF32(float32(amax) / 6)
		flip := noteTies(hook, "Q4E8", x, s, e2m1Margin)
		for i, v := range x {
			v /= s
			if f, ok := flip[i]; ok {
				v = f
			}
			x[i] = RoundE2M1(v) * s
		}
	})
}

// Q4E4 is the FP4 e2m1 block quant-dequant with an e4m3 scale (V4.1
// compressed KV): per block, amax = max(max|x|, 6·2⁻⁹), s = e4m3(amax/6),
// x ← e2m1(clamp(x/s, ±6))·s.
func Q4E4(x []float64, b int) { q4e4(x, b, nil) }

func q4e4(x []float64, b int, hook tieHook) {
	blocks(x, b, func(x []float64) {
		amax := math.Max(blockAmax(x), 6*math.Ldexp(1, -9))
		s := RoundE4M3(float64(float32(amax) / 6))
		flip := noteTies(hook, "Q4E4", x, s, e2m1Margin)
		for i, v := range x {
			v /= s
			if f, ok := flip[i]; ok {
				v = f
			}
			x[i] = RoundE2M1(v) * s
		}
	})
}

// Hadamard applies the orthonormal Sylvester-Hadamard rotation
// x ← x·H·len(x)^(−1/2), H[i][j] = (−1)^popcount(i AND j), to x, whose
// length must be a power of two. It is computed by its definition.
func Hadamard(x []float64) {
	n := len(x)
	y := make([]float64, n)
	for j := 0; j < n; j++ {
		s := 0.0
		for i := 0; i < n; i++ {
			if popcount(i&j)%2 == 0 {
				s += x[i]
			} else {
				s -= x[i]
			}
		}
		y[j] = s / math.Sqrt(float64(n))
	}
	copy(x, y)
}

func popcount(v int) int {
	c := 0
	for ; v != 0; v &= v - 1 {
		c++
	}
	return c
}
