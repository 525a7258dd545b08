package sampler

import "math"

// The passes over the whole vocabulary. Go compiled to WebAssembly pays for
// every jump between basic blocks, a loop's back-edge included, with a trip
// through the function's jump table (DESIGN.md), and the compiler turns
// only integer if-assignments into branch-free selects (never float ones).
// So these loops take several ids per iteration, order floats through
// their integer keys (f32Ord) and pick values with integer selects: their
// bodies have no jumps.

// f32Ord maps a float32 to a uint32 in the same order: -Inf < … < -0 < +0
// < … < +Inf, negative NaNs below -Inf, positive NaNs above +Inf.
func f32Ord(f float32) uint32 {
	u := math.Float32bits(f)
	return u ^ (uint32(int32(u)>>31) | 1<<31)
}

// f32FromOrd inverts f32Ord.
func f32FromOrd(o uint32) float32 {
	if o>>31 != 0 {
		return math.Float32frombits(o &^ (1 << 31))
	}
	return math.Float32frombits(^o)
}

// massMask keeps bucket indices provably inside Sampler.mass, which saves a
// bounds check per id; real indices are at most 62·16 and never change.
const massMask = 1<<10 - 1

// ordNegInf is f32Ord(-Inf).
var ordNegInf = f32Ord(float32(math.Inf(-1)))

// maxFinite returns the largest value of x and -1, or the index of the
// first NaN or +Inf (-Inf, a masked token, is fine). Eight values per
// iteration, compared in index order; the branches inside are rarely taken
// (falling through costs nothing extra in WebAssembly).
func maxFinite(x []float32) (float32, int) {
	m := float32(math.Inf(-1))
	i := 0
	for ; i+8 <= len(x); i += 8 {
		w := x[i : i+8 : i+8]
		if !(w[0] <= math.MaxFloat32 && w[1] <= math.MaxFloat32 && w[2] <= math.MaxFloat32 && w[3] <= math.MaxFloat32 &&
			w[4] <= math.MaxFloat32 && w[5] <= math.MaxFloat32 && w[6] <= math.MaxFloat32 && w[7] <= math.MaxFloat32) {
			break // the scalar loop finds which one
		}
		v0, v1, v2, v3, v4, v5, v6, v7 := w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
		if v0 > m {
			m = v0
		}
		if v1 > m {
			m = v1
		}
		if v2 > m {
			m = v2
		}
		if v3 > m {
			m = v3
		}
		if v4 > m {
			m = v4
		}
		if v5 > m {
			m = v5
		}
		if v6 > m {
			m = v6
		}
		if v7 > m {
			m = v7
		}
	}
	for ; i < len(x); i++ {
		v := x[i]
		if !(v <= math.MaxFloat32) {
			return m, i
		}
		if v > m {
			m = v
		}
	}
	return m, -1
}

// weight is the integer weight of logit v (see draw): the caller knows
// that t = v·a − b is at least cutT.
func weight(v float32, a, b float64, sc int64) uint64 {
	return uint64(pow2Ticks(float64(float64(v)*a)-b, sc))
}

// quantMass adds the weight of every logit to its top-p bucket in mass and
// returns the total. Integer sums are exact, so the order of the additions
// does not matter. For t below cutT the weight is 0 and the bucket that of
// cutT; pow2Ticks of such a t is garbage but harmless (its table index is
// masked) and the integer selects discard it. (The body is written out:
// a helper would not be inlined.)
//
// Logits below cutX have weight 0: four of them are skipped together.
func quantMass(x []float32, cutX float32, a, b, cutT float64, sc int64, mass *[len(Sampler{}.mass)]uint64) uint64 {
	cutTi := int64(cutT)
	var total uint64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		w := x[i : i+4 : i+4]
		if w[0] < cutX && w[1] < cutX && w[2] < cutX && w[3] < cutX {
			continue
		}
		t0 := float64(float64(w[0])*a) - b
		q0, ti0 := int64(pow2Ticks(t0, sc)), int64(t0)
		if !(t0 >= cutT) {
			q0, ti0 = 0, cutTi
		}
		t1 := float64(float64(w[1])*a) - b
		q1, ti1 := int64(pow2Ticks(t1, sc)), int64(t1)
		if !(t1 >= cutT) {
			q1, ti1 = 0, cutTi
		}
		t2 := float64(float64(w[2])*a) - b
		q2, ti2 := int64(pow2Ticks(t2, sc)), int64(t2)
		if !(t2 >= cutT) {
			q2, ti2 = 0, cutTi
		}
		t3 := float64(float64(w[3])*a) - b
		q3, ti3 := int64(pow2Ticks(t3, sc)), int64(t3)
		if !(t3 >= cutT) {
			q3, ti3 = 0, cutTi
		}
		mass[-(ti0 >> bucketShift)] += uint64(q0)
		mass[-(ti1 >> bucketShift)] += uint64(q1)
		mass[-(ti2 >> bucketShift)] += uint64(q2)
		mass[-(ti3 >> bucketShift)] += uint64(q3)
		total += uint64(q0 + q1 + q2 + q3)
	}
	for ; i < len(x); i++ {
		w := x[i : i+1 : i+1]
		t0 := float64(float64(w[0])*a) - b
		q0, ti0 := int64(pow2Ticks(t0, sc)), int64(t0)
		if !(t0 >= cutT) {
			q0, ti0 = 0, cutTi
		}
		mass[-(ti0 >> bucketShift)] += uint64(q0)
		total += uint64(q0)
	}
	return total
}

// quantAll stores the weight of every logit in q and returns the total
// (see quantMass).
func quantAll(x []float32, q []uint64, a, b, cutT float64, sc int64) uint64 {
	q = q[:len(x)]
	var total uint64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		w, qs := x[i:i+4:i+4], q[i:i+4:i+4]
		t0 := float64(float64(w[0])*a) - b
		q0 := int64(pow2Ticks(t0, sc))
		if !(t0 >= cutT) {
			q0 = 0
		}
		t1 := float64(float64(w[1])*a) - b
		q1 := int64(pow2Ticks(t1, sc))
		if !(t1 >= cutT) {
			q1 = 0
		}
		t2 := float64(float64(w[2])*a) - b
		q2 := int64(pow2Ticks(t2, sc))
		if !(t2 >= cutT) {
			q2 = 0
		}
		t3 := float64(float64(w[3])*a) - b
		q3 := int64(pow2Ticks(t3, sc))
		if !(t3 >= cutT) {
			q3 = 0
		}
		qs[0], qs[1], qs[2], qs[3] = uint64(q0), uint64(q1), uint64(q2), uint64(q3)
		total += uint64(q0 + q1 + q2 + q3)
	}
	for ; i < len(x); i++ {
		w := x[i : i+1 : i+1]
		t0 := float64(float64(w[0])*a) - b
		q0 := int64(pow2Ticks(t0, sc))
		if !(t0 >= cutT) {
			q0 = 0
		}
		q[i] = uint64(q0)
		total += uint64(q0)
	}
	return total
}

// bucketThreshold returns the smallest float32 v ≤ m whose t = v·a − b is
// at least cutT and whose top-p bucket is at most k, or +Inf if m's is not
// (k < 0). t never decreases as v grows and the bucket never increases as
// t grows, so the predicate is monotone and bisection over the float32s
// in order finds the exact boundary; m is the largest logit, so t ≤ 0 and
// every conversion is in range.
func bucketThreshold(m float32, k int, a, b, cutT float64) float32 {
	in := func(v float32) bool {
		t := float64(float64(v)*a) - b
		return t >= cutT && int(-(int64(t)>>bucketShift)) <= k
	}
	if !in(m) {
		return float32(math.Inf(1))
	}
	lo, hi := ordNegInf, f32Ord(m) // in(lo) is false, in(hi) true
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if in(f32FromOrd(mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return f32FromOrd(hi)
}

// scanAbove appends to kept the ids whose logit is at least keepX and to
// boundary those at least bndX but below keepX, both in ascending order
// (keepX ≥ bndX). Eight ids per iteration, skipped together by one
// comparison when none reaches bndX, which is most of them.
func scanAbove(x []float32, keepX, bndX float32, kept, boundary []int32) ([]int32, []int32) {
	keepO, bndO := f32Ord(keepX), f32Ord(bndX)
	visit := func(id int, o uint32) {
		if o >= keepO {
			kept = append(kept, int32(id))
		} else if o >= bndO {
			boundary = append(boundary, int32(id))
		}
	}
	i := 0
	for ; i+8 <= len(x); i += 8 {
		w := x[i : i+8 : i+8]
		o0, o1, o2, o3 := f32Ord(w[0]), f32Ord(w[1]), f32Ord(w[2]), f32Ord(w[3])
		o4, o5, o6, o7 := f32Ord(w[4]), f32Ord(w[5]), f32Ord(w[6]), f32Ord(w[7])
		if max(max(max(o0, o1), max(o2, o3)), max(max(o4, o5), max(o6, o7))) < bndO {
			continue
		}
		for j, v := range w {
			visit(i+j, f32Ord(v))
		}
	}
	for ; i < len(x); i++ {
		visit(i, f32Ord(x[i]))
	}
	return kept, boundary
}
