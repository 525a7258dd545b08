package sampler

import "math"

// The sampler computes its own exponential instead of calling math.Exp,
// because math.Exp has assembly versions on some targets that may differ
// from the portable one in the last bit, and the sampler must pick the same
// token natively and in WebAssembly. Every product below is wrapped in an
// explicit float64 conversion, which the Go spec guarantees is rounded, so
// no compiler may fuse it into an FMA (arm64 would otherwise).
//
// Inputs are in fixed "ticks" of 1/4096 of a power of two:
// 2^(t/4096) = 2^k · 2^(j/4096) · e^r with a 4096-entry table and
// e^r ≈ 1 + r for |r| < ln2/4096, a relative error below 1.5e-8 — ample
// for sampling and cheap enough to run over the whole vocabulary.

const (
	ticks        = 4096
	tickBits     = 12
	log2eTicks   = 1.4426950408889634 * ticks
	ln2OverTicks = 0.6931471805599453 / ticks
)

// pow2Tab[j] = 2^(j/4096), filled at start-up by a long Taylor series using
// only correctly rounded operations, so every target gets the same table.
var pow2Tab = func() (t [ticks]float64) {
	for j := range t {
		r := float64(float64(j)*0.6931471805599453) / ticks
		sum, term := 1.0, 1.0
		for i := 1; i < 25; i++ {
			term = float64(term*r) / float64(i)
			sum += term
		}
		t[j] = sum
	}
	return
}()

// pow2Ticks returns 2^(t/4096 + e) for t <= 0 with t/4096+e >= -1021; the
// caller guarantees the range. It stays under the inlining budget on
// purpose: it runs once per vocabulary entry.
func pow2Ticks(t float64, e int64) float64 {
	// int64() truncates toward zero, so r is in (-ln2/4096, 0]; the
	// arithmetic shift and mask split ti exactly.
	ti := int64(t)
	r := float64(t-float64(ti)) * ln2OverTicks
	return float64(float64(pow2Tab[ti&(ticks-1)]*(1+r)) * math.Float64frombits(uint64((ti>>tickBits)+e+1023)<<52))
}

// expNeg returns e^x for x <= 0 (0 below -708, for NaN and -Inf; 1 for
// x >= 0).
func expNeg(x float64) float64 {
	if !(x > -708) {
		return 0
	}
	if x >= 0 {
		return 1
	}
	return pow2Ticks(float64(x*log2eTicks), 0)
}
